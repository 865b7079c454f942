-- darkroom.housekeep(), run daily by pg_cron (20261128000011): deletes archived queue messages
-- and pg_cron run history past the retention (the `retention` setting, or its argument), and
-- what the event half of the pipeline grows: subscriber receipts and the analytics rollups'
-- minutes. Hours and days stay (they are small:
-- /stats and its histograms read them); so does darkroom.analytics_counted, which goes with its
-- event, since a replay of an event whose mark was trimmed would count it twice.
-- Defined here, after every table it trims, and nowhere else.

create or replace function darkroom.housekeep(p_retention interval default null) returns bigint
language plpgsql volatile
security definer
set search_path = ''
as $$
declare
  v_keep constant interval := coalesce(p_retention,
    (select s.value::interval from darkroom.settings s where s.key = 'retention'), '7 days');
  v_gone bigint := 0;
  v_n bigint;
  v_queue text;
begin
  for v_queue in select w.queue from darkroom.worker_queues w loop
    execute format('delete from pgmq.%I where archived_at < now() - $1', 'a_' || v_queue)
      using v_keep;
    get diagnostics v_n = row_count;
    v_gone := v_gone + v_n;
  end loop;
  -- GUARD: pg_cron is there only on Supabase (or where someone installed it).
  if to_regclass('cron.job_run_details') is not null then
    execute 'delete from cron.job_run_details where end_time < now() - $1' using v_keep;
    get diagnostics v_n = row_count;
    v_gone := v_gone + v_n;
  end if;
  -- A receipt older than the retention guards nothing any more: its messages are long handled,
  -- and the archived ones it explains are gone above.
  delete from darkroom.event_receipts r where r.updated_at < now() - v_keep;
  get diagnostics v_n = row_count;
  v_gone := v_gone + v_n;
  -- Minute rollups past the retention; never inside the last hour /stats' throughput reads.
  delete from darkroom.analytics_counts c
   where c.period = 'minute'
     and c.period_start < now() - greatest(v_keep, interval '2 hours');
  get diagnostics v_n = row_count;
  v_gone := v_gone + v_n;
  -- The counts-by-status ledger (20261128000017) folds into one row per owner and status.
  perform darkroom.compact_task_status_counts();
  return v_gone;
end
$$;

revoke all on function darkroom.housekeep(interval) from public, anon, authenticated;
grant execute on function darkroom.housekeep(interval) to service_role;
