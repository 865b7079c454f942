-- On Supabase: an insert into public.events wakes the worker function of every enabled
-- subscription it reaches, through pg_net (darkroom.invoke_worker, with the Vault project_url
-- and worker_key), so a subscriber reacts within the second rather than at pg_cron's next tick.
-- At most one wake per subscriber per transaction: the trigger is per statement, and the
-- subscribers a transaction woke are remembered in a transaction-local setting. pg_net sends
-- its requests after the commit, so the worker finds the messages the fan-out sent.
--
-- A wake is a hint, never the delivery: the fan-out's queue messages are (20261128000012), and
-- pg_cron's darkroom.invoke_workers() covers every row of darkroom.worker_queues as the safety
-- net. Where pg_net or Vault is missing (plain PostgreSQL, PGlite) the trigger does nothing;
-- the local platform wakes subscriber workers on progress itself.

create or replace function darkroom._wake_subscribers() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_types text[];
  v_woken text := coalesce(current_setting('darkroom.woken_subscribers', true), '');
  v_sub record;
begin
  -- GUARD: no pg_net or no Vault (plain PostgreSQL, PGlite): nothing can be woken from here.
  if to_regnamespace('net') is null or to_regclass('vault.decrypted_secrets') is null then
    return null;
  end if;
  -- The transition table is named in EXECUTE: plpgsql_check cannot see it statically.
  execute 'select array_agg(distinct event_type) from new_rows' into v_types;
  for v_sub in
    select s.name, s.worker_function, s.queue
      from darkroom.subscriptions s
     where s.enabled
       and position(',' || s.name || ',' in ',' || v_woken || ',') = 0
       and (s.every_event or exists (
         select 1 from darkroom.subscription_event_types t
          where t.subscription = s.name and t.event_type = any(v_types)))
     order by s.name
  loop
    v_woken := v_woken || ',' || v_sub.name;
    perform set_config('darkroom.woken_subscribers', v_woken, true);
    begin
      perform darkroom.invoke_worker(v_sub.worker_function, v_sub.queue);
    exception when others then
      -- MUST NOT fail the insert: the event and its queue messages matter, the wake does not.
      raise warning 'darkroom: cannot wake %: %', v_sub.worker_function, sqlerrm;
    end;
  end loop;
  return null;
end
$$;
revoke all on function darkroom._wake_subscribers() from public, anon, authenticated;

drop trigger if exists wake_subscribers on public.events;
create trigger wake_subscribers
  after insert on public.events referencing new table as new_rows
  for each statement execute function darkroom._wake_subscribers();
