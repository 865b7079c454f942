-- The analytics rollups, kept by the analytics-worker from every event (subscription
-- `analytics`, every_event): per-stage latency histograms, counts by event type and by task
-- status per minute and per hour, AI usage per day. Each rollup row is keyed by owner (null for
-- ownerless tasks); GET /stats reads them through darkroom.stats() (20261128000017). Internal:
-- service_role only.
--
-- Counted set by set: darkroom.count_events() adds many events in one statement per rollup, so
-- the analytics-worker commits a whole batch in one transaction (record_analytics_batch: the
-- rollups, the receipts, the message deletes) and darkroom.rebuild_rollups() recounts the log the
-- same way; record_analytics(uuid) is the one-event case of the same rule.
--
-- Idempotent by eventId: darkroom.record_analytics() marks the event counted
-- (darkroom.analytics_counted) IN THE SAME TRANSACTION as the rollup increments, and increments
-- nothing when the mark is already there. The subscriber receipts alone would not do: the ack
-- commits after the handler's own transaction (a worker dying between the two would count the
-- redelivered event twice), replay_events deletes the receipts of the range it replays (a
-- back-fill would count the log again), and housekeep() trims them.

-- Latency buckets: fixed, log-scale, four per doubling (each ~19% wide): bucket 0 holds 0 ms,
-- bucket b >= 1 holds [2^((b-1)/4), 2^(b/4)) ms, capped at 127 (about 34 days). shared/histogram.ts
-- is the same rule; a test checks that the two agree.
create or replace function darkroom.latency_bucket(p_ms bigint) returns smallint
language sql immutable
set search_path = ''
as $$
  select case when p_ms is null or p_ms < 1 then 0
              else least(floor(4 * log(2::numeric, p_ms::numeric)) + 1, 127) end::smallint
$$;

-- The value a bucket reports for a percentile: its geometric middle, in whole ms (<= 10% off).
create or replace function darkroom.latency_bucket_value(p_bucket smallint) returns bigint
language sql immutable
set search_path = ''
as $$
  select case when p_bucket <= 0 then 0
              else round(power(2::float8, (p_bucket - 0.5) / 4.0))::bigint end
$$;

create table darkroom.analytics_latency (
  day date not null,
  owner uuid,
  -- A stage of darkroom.stages, or 'total' (task.completed: the whole task).
  stage text not null,
  bucket smallint not null,
  n bigint not null,
  constraint analytics_latency_key unique nulls not distinct (day, owner, stage, bucket),
  constraint bucket_is_in_range check (bucket between 0 and 127)
);
-- One owner's histogram for a user's /stats, without reading every owner's rows.
create index analytics_latency_owner_idx on darkroom.analytics_latency (owner, stage, bucket);

create table darkroom.analytics_counts (
  period text not null,
  period_start timestamptz not null,
  owner uuid,
  -- 'event_type' (value: the event type) or 'status' (value: the task status it entered).
  dimension text not null,
  value text not null,
  n bigint not null,
  constraint analytics_counts_key
    unique nulls not distinct (period, period_start, owner, dimension, value),
  constraint period_is_known check (period in ('minute', 'hour')),
  constraint dimension_is_known check (dimension in ('event_type', 'status'))
);
-- housekeep() trims old minutes; /stats reads the newest.
create index analytics_counts_period_start_idx on darkroom.analytics_counts (period, period_start);

create table darkroom.analytics_ai_usage (
  day date not null,
  owner uuid,
  provider text not null,
  model text not null,
  calls bigint not null,
  prompt_tokens bigint not null,
  completion_tokens bigint not null,
  total_tokens bigint not null,
  constraint analytics_ai_usage_key unique nulls not distinct (day, owner, provider, model)
);

-- The events already in the rollups: one row per event, gone with its event (a task deleted).
-- Never trimmed on its own: a replay of an event whose mark was gone would count it again.
create table darkroom.analytics_counted (
  event_id uuid primary key references public.events (id) on delete cascade,
  counted_at timestamptz not null default now()
);

-- The task status an event puts its task in, or null for the events that change none.
create or replace function darkroom.status_entered(p_event_type text) returns text
language sql immutable
set search_path = ''
as $$
  select case p_event_type
    when 'task.created' then 'queued'
    when 'task.completed' then 'completed'
    when 'task.failed' then 'failed'
    when 'task.cancelled' then 'cancelled'
  end
$$;

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
-- One event, once (the same rule): false when it is gone or was counted already.
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

-- A token count of an image.analyzed payload's usage (null usage, or no number: 0).
create or replace function darkroom._usage_tokens(p_payload jsonb, p_key text) returns bigint
language sql immutable
set search_path = ''
as $$
  select case when jsonb_typeof(p_payload -> 'usage' -> p_key) = 'number'
              then floor((p_payload -> 'usage' ->> p_key)::numeric)::bigint else 0 end
$$;

revoke all on darkroom.analytics_latency, darkroom.analytics_counts, darkroom.analytics_ai_usage,
  darkroom.analytics_counted
  from public, anon, authenticated;
grant select on darkroom.analytics_latency, darkroom.analytics_counts, darkroom.analytics_ai_usage
  to service_role;
revoke all on function darkroom.latency_bucket(bigint), darkroom.latency_bucket_value(smallint),
  darkroom.status_entered(text), darkroom.record_analytics(uuid),
  darkroom._usage_tokens(jsonb, text)
  from public, anon, authenticated;
grant execute on function darkroom.record_analytics(uuid), darkroom.latency_bucket(bigint),
  darkroom.latency_bucket_value(smallint)
  to service_role;

revoke all on function darkroom.count_events(uuid[]),
  darkroom.record_analytics_batch(bigint[], uuid[], integer[])
  from public, anon, authenticated;
grant execute on function darkroom.record_analytics_batch(bigint[], uuid[], integer[])
  to service_role;

-- Its worker exists now: enable the subscription and back-fill the whole log.
update darkroom.subscriptions set enabled = true where name = 'analytics';
select darkroom.replay_events('analytics', 0);
