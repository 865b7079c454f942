-- The analytics rollups, kept by the analytics-worker from every event (subscription
-- `analytics`, every_event): per-stage latency histograms, counts by event type and by task
-- status per minute and per hour, AI usage per day. Each rollup row is keyed by owner (null for
-- ownerless tasks); GET /stats reads them through darkroom.stats() (20261128000017). Internal:
-- service_role only.
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

-- Adds one event to the rollups, once: returns false (and changes nothing) when the event is gone
-- or was counted already.
create or replace function darkroom.record_analytics(p_event_id uuid) returns boolean
language plpgsql volatile
security definer
set search_path = ''
as $$
declare
  v_event public.events;
  v_at timestamptz;
  v_status text;
  v_stage text;
  v_ms bigint;
begin
  select e.* into v_event from public.events e where e.id = p_event_id;
  -- GUARD: the event is gone (its task was deleted): nothing to count.
  if not found then
    return false;
  end if;

  -- GUARD: counted already (a duplicate message, a replay, or a worker that died before its
  -- ack): the mark is written with the increments, so its presence means they committed. The
  -- insert's unique index makes a second worker counting the same event wait, then skip.
  insert into darkroom.analytics_counted (event_id) values (v_event.id)
  on conflict (event_id) do nothing;
  if not found then
    return false;
  end if;

  -- Counts go by the event's own time, so a back-fill lands in the minutes it happened.
  v_at := v_event.created_at;
  v_status := darkroom.status_entered(v_event.event_type);
  insert into darkroom.analytics_counts as c (period, period_start, owner, dimension, value, n)
  select p.period, date_trunc(p.period, v_at, 'UTC'), v_event.owner, d.dimension, d.value, 1
    from (values ('minute'), ('hour')) p (period),
         (values ('event_type', v_event.event_type), ('status', v_status)) d (dimension, value)
   where d.value is not null
   order by 1, 2, 4, 5
  on conflict on constraint analytics_counts_key do update set n = c.n + 1;

  select s.name into v_stage from darkroom.stages s where s.completed_event = v_event.event_type;
  if v_event.event_type = 'task.completed' then
    v_stage := 'total';
  end if;
  if v_stage is not null and jsonb_typeof(v_event.payload -> 'durationMs') = 'number'
     and (v_event.payload ->> 'durationMs')::numeric >= 0 then
    v_ms := floor((v_event.payload ->> 'durationMs')::numeric)::bigint;
    insert into darkroom.analytics_latency as l (day, owner, stage, bucket, n)
    values ((v_at at time zone 'UTC')::date, v_event.owner, v_stage,
            darkroom.latency_bucket(v_ms), 1)
    on conflict on constraint analytics_latency_key do update set n = l.n + 1;
  end if;

  if v_event.event_type = 'image.analyzed' then
    insert into darkroom.analytics_ai_usage as u
      (day, owner, provider, model, calls, prompt_tokens, completion_tokens, total_tokens)
    values ((v_at at time zone 'UTC')::date, v_event.owner,
            coalesce(v_event.payload ->> 'provider', 'unknown'),
            coalesce(v_event.payload ->> 'model', 'unknown'), 1,
            darkroom._usage_tokens(v_event.payload, 'promptTokens'),
            darkroom._usage_tokens(v_event.payload, 'completionTokens'),
            darkroom._usage_tokens(v_event.payload, 'totalTokens'))
    on conflict on constraint analytics_ai_usage_key do update
      set calls = u.calls + 1,
          prompt_tokens = u.prompt_tokens + excluded.prompt_tokens,
          completion_tokens = u.completion_tokens + excluded.completion_tokens,
          total_tokens = u.total_tokens + excluded.total_tokens;
  end if;
  return true;
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

-- Its worker exists now: enable the subscription and back-fill the whole log.
update darkroom.subscriptions set enabled = true where name = 'analytics';
select darkroom.replay_events('analytics', 0);
