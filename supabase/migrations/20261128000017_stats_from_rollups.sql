-- GET /stats reads rollups, never raw rows: darkroom.stats() answers in one call from the
-- analytics rollups (20261128000016) and from darkroom.task_status_counts, kept here by a
-- trigger on public.tasks.
--
-- Why a trigger for the counts by status, not the analytics-worker: the tasks row is the truth,
-- and a statement-level trigger keeps the counter in the very transaction that changes it, so
-- /stats counts a task the moment POST /tasks answers, and stays exact through what no event
-- maps one-to-one (a manual retry back to processing, a task deleted with its events). The
-- counter is a ledger of deltas, one row per (owner, status) a statement changes: inserts never
-- wait on each other, whereas an upsert of one counter row would make every transaction that
-- creates or moves a task of the same owner wait for the others to commit (a hot row, and a
-- deadlock with any transaction that waits on another). darkroom.housekeep() folds the ledger
-- into one row per (owner, status).

create table darkroom.task_status_counts (
  owner uuid,
  status text not null,
  n bigint not null
);
create index task_status_counts_owner_status_idx on darkroom.task_status_counts (owner, status);

-- Appends the statement's net change per (owner, status). The transition tables a TG_OP has are
-- named in EXECUTE: a static reference to one the trigger lacks would not compile.
create or replace function darkroom._count_task_statuses() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_rows constant text := case TG_OP
    when 'INSERT' then 'select owner, status, 1 as d from new_rows'
    when 'DELETE' then 'select owner, status, -1 as d from old_rows'
    else 'select owner, status, 1 as d from new_rows
          union all select owner, status, -1 from old_rows' end;
begin
  execute format(
    'insert into darkroom.task_status_counts (owner, status, n)
     select owner, status, sum(d) from (%s) x group by owner, status having sum(d) <> 0',
    v_rows);
  return null;
end
$$;
revoke all on function darkroom._count_task_statuses() from public, anon, authenticated;

-- Folds the ledger into one row per (owner, status), in one statement: rows appended meanwhile
-- by other transactions are new rows, neither read nor blocked.
create or replace function darkroom.compact_task_status_counts() returns void
language sql volatile
security definer
set search_path = ''
as $$
  with gone as (
    delete from darkroom.task_status_counts returning owner, status, n
  )
  insert into darkroom.task_status_counts (owner, status, n)
  select g.owner, g.status, sum(g.n) from gone g group by g.owner, g.status having sum(g.n) <> 0
$$;
revoke all on function darkroom.compact_task_status_counts() from public, anon, authenticated;

create trigger count_task_statuses_insert
  after insert on public.tasks referencing new table as new_rows
  for each statement execute function darkroom._count_task_statuses();
create trigger count_task_statuses_update
  after update on public.tasks referencing old table as old_rows new table as new_rows
  for each statement execute function darkroom._count_task_statuses();
create trigger count_task_statuses_delete
  after delete on public.tasks referencing old table as old_rows
  for each statement execute function darkroom._count_task_statuses();

-- The tasks already there (the migration's transaction sees them all, the triggers the rest).
insert into darkroom.task_status_counts (owner, status, n)
select t.owner, t.status, count(*) from public.tasks t group by t.owner, t.status;

-- The statistics the caller may see, as GET /stats answers them: its own rows (owner =
-- auth.uid(); none for the bare anon key, whose tasks belong to nobody), or every owner's summed
-- for service_role. Percentiles are nearest-rank over the log-scale histograms (a bucket's
-- geometric middle, within 10%); throughput counts the minute buckets from the start of the
-- minute before the last one (lastMinute: 60 to 120 s of data) or the 60 before (lastHour).
-- The last hour's minutes come by a plain bound (a bound joined from a CTE is not pushed into the
-- (period, period_start) index: it read every minute kept), and one owner's histogram by
-- analytics_latency_owner_idx.
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

revoke all on darkroom.task_status_counts from public, anon, authenticated;
grant select on darkroom.task_status_counts to service_role;
revoke all on function darkroom.stats() from public;
-- The api runs it as the caller's role (asCaller): it filters by auth.uid() itself.
grant execute on function darkroom.stats() to anon, authenticated, service_role;
