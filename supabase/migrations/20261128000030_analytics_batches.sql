-- The analytics rollups (20261128000016) counted set by set: darkroom.count_events() adds many
-- events in one statement per rollup, so the analytics-worker commits a whole batch in one
-- transaction (darkroom.record_analytics_batch: the rollups, the receipts, the message deletes),
-- and darkroom.rebuild_rollups() recounts the whole events log the same way. One rule for all
-- three: record_analytics(uuid) now counts through it too.

-- Adds to the rollups each of p_event_ids not counted yet, and marks it counted in the same
-- transaction (darkroom.analytics_counted: a mark present means its increments committed).
-- Events gone or counted already add nothing. Returns how many events were counted. The ids are
-- joined (unnest), not matched with = any(): a rebuild hands over the whole log at once.
create or replace function darkroom.count_events(p_event_ids uuid[]) returns integer
language plpgsql volatile
security definer
set search_path = ''
as $$
declare
  v_fresh uuid[];
begin
  -- GUARD: counted already, or gone: only the events whose mark this insert writes count. The
  -- unique mark makes a second worker counting the same event wait, then skip it.
  with marked as (
    insert into darkroom.analytics_counted (event_id)
    select distinct e.id from unnest(p_event_ids) a (id) join public.events e on e.id = a.id
     order by e.id
    on conflict (event_id) do nothing
    returning event_id
  )
  select coalesce(array_agg(m.event_id), '{}') into v_fresh from marked m;
  if cardinality(v_fresh) = 0 then
    return 0;
  end if;

  -- Counts go by the event's own time, so a back-fill lands in the minutes it happened. Every
  -- upsert names each key once (grouped) and in key order (no deadlock between two batches).
  insert into darkroom.analytics_counts as c (period, period_start, owner, dimension, value, n)
  select p.period, date_trunc(p.period, e.created_at, 'UTC'), e.owner, d.dimension, d.value,
         count(*)
    from unnest(v_fresh) f (id) join public.events e on e.id = f.id
   cross join (values ('minute'), ('hour')) p (period)
   cross join lateral (values ('event_type', e.event_type),
                              ('status', darkroom.status_entered(e.event_type))) d (dimension, value)
   where d.value is not null
   group by 1, 2, 3, 4, 5
   order by 1, 2, 3, 4, 5
  on conflict on constraint analytics_counts_key do update set n = c.n + excluded.n;

  -- A stage's completion event times that stage; task.completed times the whole task.
  insert into darkroom.analytics_latency as l (day, owner, stage, bucket, n)
  select (e.created_at at time zone 'UTC')::date, e.owner, x.stage,
         darkroom.latency_bucket(x.ms), count(*)
    from unnest(v_fresh) f (id) join public.events e on e.id = f.id
   cross join lateral (
     select case when e.event_type = 'task.completed' then 'total'
                 else (select s.name from darkroom.stages s
                        where s.completed_event = e.event_type) end as stage,
            case when jsonb_typeof(e.payload -> 'durationMs') = 'number'
                 then floor((e.payload ->> 'durationMs')::numeric)::bigint end as ms
   ) x
   where x.stage is not null and x.ms >= 0
   group by 1, 2, 3, 4
   order by 1, 2, 3, 4
  on conflict on constraint analytics_latency_key do update set n = l.n + excluded.n;

  insert into darkroom.analytics_ai_usage as u
    (day, owner, provider, model, calls, prompt_tokens, completion_tokens, total_tokens)
  select (e.created_at at time zone 'UTC')::date, e.owner,
         coalesce(e.payload ->> 'provider', 'unknown'), coalesce(e.payload ->> 'model', 'unknown'),
         count(*),
         sum(darkroom._usage_tokens(e.payload, 'promptTokens'))::bigint,
         sum(darkroom._usage_tokens(e.payload, 'completionTokens'))::bigint,
         sum(darkroom._usage_tokens(e.payload, 'totalTokens'))::bigint
    from unnest(v_fresh) f (id) join public.events e on e.id = f.id
   where e.event_type = 'image.analyzed'
   group by 1, 2, 3, 4
   order by 1, 2, 3, 4
  on conflict on constraint analytics_ai_usage_key do update
    set calls = u.calls + excluded.calls,
        prompt_tokens = u.prompt_tokens + excluded.prompt_tokens,
        completion_tokens = u.completion_tokens + excluded.completion_tokens,
        total_tokens = u.total_tokens + excluded.total_tokens;
  return cardinality(v_fresh);
end
$$;

-- One event, once (as before; now through the one rule above).
create or replace function darkroom.record_analytics(p_event_id uuid) returns boolean
language sql volatile
security definer
set search_path = ''
as $$
  select darkroom.count_events(array[p_event_id]) = 1
$$;

-- The analytics-worker's whole batch in one transaction: the events counted (each once), their
-- receipts 'done' and their messages deleted. The arrays are parallel (message, event, tries).
-- Returns how many events were counted (duplicates and events gone count nothing).
create or replace function darkroom.record_analytics_batch(
  p_msg_ids bigint[],
  p_event_ids uuid[],
  p_attempts integer[]
) returns integer
language plpgsql volatile
security definer
set search_path = ''
as $$
declare
  v_counted integer;
begin
  v_counted := darkroom.count_events(p_event_ids);
  -- One receipt per event, even when two messages of the batch announce the same one.
  insert into darkroom.event_receipts as r (subscription, event_id, status, attempts, error)
  select distinct on (a.event_id) 'analytics', a.event_id, 'done', greatest(a.attempts, 1), null
    from unnest(p_event_ids, p_attempts) a (event_id, attempts)
   where exists (select 1 from public.events e where e.id = a.event_id)
   order by a.event_id, a.attempts desc
  on conflict (subscription, event_id) do update
    set status = excluded.status, attempts = excluded.attempts, error = null, updated_at = now();
  perform pgmq.delete(darkroom.subscription_queue('analytics'), p_msg_ids);
  return v_counted;
end
$$;

revoke all on function darkroom.count_events(uuid[]),
  darkroom.record_analytics_batch(bigint[], uuid[], integer[])
  from public, anon, authenticated;
grant execute on function darkroom.record_analytics_batch(bigint[], uuid[], integer[])
  to service_role;
