-- darkroom.stats() (20261128000017), same answer, two fewer scans as the rollups grow (1.4M rollup
-- rows over 30 days and 200 owners, PostgreSQL: 40 -> 22 ms for a user, 44 -> 17 ms for
-- service_role): the throughput read the last hour's minutes through a join on a bound taken from
-- a CTE, which the planner could not push into the (period, period_start) index, so it read every
-- minute kept; and a user's latency histogram scanned every owner's rows. Now the last hour's
-- minutes come by a plain bound, and one owner's histogram by an index on owner.

create index if not exists analytics_latency_owner_idx
  on darkroom.analytics_latency (owner, stage, bucket);

create or replace function darkroom.stats() returns jsonb
language sql stable
security definer
set search_path = ''
as $$
  with caller as (
    select auth.role() = 'service_role' as all_owners, auth.uid() as uid
  ), counts as (
    select c.status, sum(c.n)::bigint as n
      from darkroom.task_status_counts c, caller
     where caller.all_owners or c.owner = caller.uid
     group by c.status
  ), hist as (
    -- Two branches, one of which a one-time filter skips: a user's rows come by the owner
    -- index; only service_role reads every owner's.
    select l.stage, l.bucket, sum(l.n) as n
      from (select l.stage, l.bucket, l.n from darkroom.analytics_latency l
             where (select all_owners from caller)
            union all
            select l.stage, l.bucket, l.n from darkroom.analytics_latency l
             where not (select all_owners from caller) and l.owner = (select uid from caller)) l
     group by l.stage, l.bucket
  ), cum as (
    select h.stage, h.bucket,
           sum(h.n) over (partition by h.stage order by h.bucket) as upto,
           sum(h.n) over (partition by h.stage) as total
      from hist h
  ), stages as (
    select c.stage, max(c.total)::bigint as n,
           min(c.bucket) filter (where c.upto >= greatest(1, ceil(0.50 * c.total))) as b50,
           min(c.bucket) filter (where c.upto >= greatest(1, ceil(0.95 * c.total))) as b95,
           min(c.bucket) filter (where c.upto >= greatest(1, ceil(0.99 * c.total))) as b99
      from cum c
     group by c.stage
  ), windows as (
    select w.name, w.since
      from (values ('lastMinute', date_trunc('minute', now(), 'UTC') - interval '1 minute'),
                   ('lastHour', date_trunc('minute', now(), 'UTC') - interval '60 minutes'))
           w (name, since)
  ), throughput as (
    select w.name, w.since,
           coalesce(sum(c.n) filter (where c.dimension = 'event_type'), 0)::bigint as events,
           coalesce(sum(c.n) filter (where c.dimension = 'status' and c.value = 'queued'), 0)::bigint
             as created,
           coalesce(sum(c.n) filter (where c.dimension = 'status' and c.value = 'completed'), 0)::bigint
             as completed,
           coalesce(sum(c.n) filter (where c.dimension = 'status' and c.value = 'failed'), 0)::bigint
             as failed
      from windows w
      cross join caller
      -- The last hour's minutes by a bound the index on (period, period_start) can use: a
      -- join condition on w.since made the planner read every minute kept.
      left join (select c.* from darkroom.analytics_counts c
                  where c.period = 'minute'
                    and c.period_start >= date_trunc('minute', now(), 'UTC') - interval '60 minutes') c
        on c.period_start >= w.since
       and (caller.all_owners or c.owner = caller.uid)
     group by w.name, w.since
  ), ai as (
    select u.provider, u.model, sum(u.calls)::bigint as calls,
           sum(u.prompt_tokens)::bigint as pt, sum(u.completion_tokens)::bigint as ct,
           sum(u.total_tokens)::bigint as tt
      from darkroom.analytics_ai_usage u, caller
     where caller.all_owners or u.owner = caller.uid
     group by u.provider, u.model
  )
  select jsonb_build_object(
    'scope', case when (select all_owners from caller) then 'all' else 'own' end,
    'tasks', (select coalesce(jsonb_object_agg(status, n), '{}') from counts),
    'stages', (select coalesce(jsonb_object_agg(stage, jsonb_build_object(
        'count', n,
        'p50Ms', darkroom.latency_bucket_value(b50::smallint),
        'p95Ms', darkroom.latency_bucket_value(b95::smallint),
        'p99Ms', darkroom.latency_bucket_value(b99::smallint))), '{}') from stages),
    'throughput', (select jsonb_object_agg(name, jsonb_build_object(
        'since', since, 'events', events, 'created', created, 'completed', completed,
        'failed', failed)) from throughput),
    'ai', jsonb_build_object(
      'analyzed', (select coalesce(sum(calls), 0) from ai),
      'byProvider', (select coalesce(jsonb_object_agg(provider, n), '{}')
                       from (select provider, sum(calls) as n from ai group by provider) p),
      'promptTokens', (select coalesce(sum(pt), 0) from ai),
      'completionTokens', (select coalesce(sum(ct), 0) from ai),
      'totalTokens', (select coalesce(sum(tt), 0) from ai),
      'models', (select coalesce(jsonb_agg(jsonb_build_object(
          'provider', provider, 'model', model, 'calls', calls, 'promptTokens', pt,
          'completionTokens', ct, 'totalTokens', tt) order by provider, model), '[]') from ai))
  )
$$;


revoke all on function darkroom.stats() from public;
-- The api runs it as the caller's role (asCaller): it filters by auth.uid() itself.
grant execute on function darkroom.stats() to anon, authenticated, service_role;
