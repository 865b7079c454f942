-- darkroom.rebuild_rollups(): the operator's way back to rollups that match the events log, e.g.
-- after a bug counted wrong or a rollup row was edited by hand. It empties the rollups and their
-- marks and counts the whole log again with darkroom.count_events(), the rule the
-- analytics-worker counts by, in one transaction: /stats reads the old rollups until it commits.
-- service_role only:
--   select darkroom.rebuild_rollups();
-- Events of deleted tasks are gone from the log, so they are gone from the rebuilt rollups too.
-- Minutes past the retention come back until the next housekeep() trims them. The log goes in
-- chunks of p_chunk events (by seq), each counted in one pass: a rollup row is inserted once per
-- chunk, not updated once per event (a million updates leave a million dead rows for /stats to
-- scan until vacuum).

create or replace function darkroom.rebuild_rollups(p_chunk integer default 1000000) returns bigint
language plpgsql volatile
security definer
set search_path = ''
as $$
declare
  v_from bigint;
  v_last bigint;
  v_counted bigint := 0::bigint;
begin
  if p_chunk is null or p_chunk < 1 then
    raise exception 'invalid chunk: %', p_chunk using errcode = '22023';
  end if;
  -- Every count goes through a mark: holding the marks makes an analytics-worker counting now
  -- wait until the rebuild commits, then find its events marked and skip them (never twice).
  lock table darkroom.analytics_counted in exclusive mode;
  delete from darkroom.analytics_counted;
  delete from darkroom.analytics_counts;
  delete from darkroom.analytics_latency;
  delete from darkroom.analytics_ai_usage;
  select min(e.seq), max(e.seq) into v_from, v_last from public.events e;
  while v_from <= v_last loop
    v_counted := v_counted + darkroom.count_events(array(
      select e.id from public.events e where e.seq >= v_from and e.seq < v_from + p_chunk));
    v_from := v_from + p_chunk;
  end loop;
  return v_counted;
end
$$;

revoke all on function darkroom.rebuild_rollups(integer) from public, anon, authenticated;
grant execute on function darkroom.rebuild_rollups(integer) to service_role;
