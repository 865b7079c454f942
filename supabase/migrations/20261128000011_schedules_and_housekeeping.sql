-- On Supabase: pg_cron + pg_net invoke the worker functions, the Storage bucket exists, and a
-- daily job trims what would otherwise grow forever. Where pg_cron, pg_net, Vault or Storage is
-- missing (plain PostgreSQL, PGlite) those parts are skipped; the local platform's scheduler
-- stands in for the schedules.

-- Settings an operator may change with an update: retention of archived queue messages and of
-- pg_cron's run history.
create table darkroom.settings (
  key text primary key,
  value text not null
);
insert into darkroom.settings (key, value) values ('retention', '7 days');
grant select on darkroom.settings to service_role;

-- Calls a worker function when its queue has a visible message. Returns the pg_net request id,
-- or null when there was nothing to do or the Vault secrets are missing. The project URL and the
-- worker key come from Vault (`project_url`, `worker_key`: a secret key sb_secret_… or the
-- legacy service_role JWT), never from this file; both headers carry the key so that either
-- style is accepted.
create or replace function darkroom.invoke_worker(p_function text, p_queue text)
returns bigint
language plpgsql volatile
security definer
set search_path = ''
as $$
declare
  v_url text;
  v_key text;
  v_ready boolean;
begin
  -- GUARD: an idle queue costs no function invocation.
  execute format('select exists (select 1 from pgmq.%I where vt <= clock_timestamp())',
                 'q_' || p_queue)
     into v_ready;
  if not v_ready then
    return null;
  end if;
  execute 'select decrypted_secret from vault.decrypted_secrets where name = $1'
     into v_url using 'project_url';
  execute 'select decrypted_secret from vault.decrypted_secrets where name = $1'
     into v_key using 'worker_key';
  if v_url is null or v_key is null then
    raise warning 'darkroom: Vault secrets project_url and worker_key are not set';
    return null;
  end if;
  return net.http_post(
    url := v_url || '/functions/v1/' || p_function,
    headers := jsonb_build_object('Authorization', 'Bearer ' || v_key, 'apikey', v_key,
                                  'Content-Type', 'application/json'),
    body := '{}'::jsonb,
    timeout_milliseconds := 60000
  );
end
$$;

-- Invokes every worker whose queue has work: the one scheduled job (one pg_cron run row per
-- tick, not one per worker).
create or replace function darkroom.invoke_workers() returns integer
language sql volatile
security definer
set search_path = ''
as $$
  select count(darkroom.invoke_worker(w.worker_function, w.queue))::integer
    from darkroom.worker_queues w
$$;

revoke all on function darkroom.invoke_worker(text, text), darkroom.invoke_workers()
  from public, anon, authenticated;

do $$
begin
  if exists (select 1 from pg_available_extensions where name = 'pg_cron')
     and exists (select 1 from pg_available_extensions where name = 'pg_net')
     and exists (select 1 from pg_namespace where nspname = 'vault') then
    create extension if not exists pg_cron;
    create extension if not exists pg_net;
    perform cron.schedule('darkroom-workers', '2 seconds',
      $cmd$ select darkroom.invoke_workers() $cmd$);
    -- darkroom.housekeep() is defined in 20261128000019, once every table it trims exists.
    perform cron.schedule('darkroom-housekeeping', '17 3 * * *',
      $cmd$ select darkroom.housekeep() $cmd$);
  end if;
end
$$;

-- The private bucket of originals and thumbnails, where Supabase Storage is (config.toml makes
-- it only for the local CLI; a linked project gets it here).
do $$
begin
  if to_regclass('storage.buckets') is not null then
    insert into storage.buckets (id, name, public, file_size_limit, allowed_mime_types)
    values ('images', 'images', false, 20971520,
            array['image/jpeg', 'image/png', 'image/webp', 'image/gif', 'image/tiff', 'image/heic',
                  'image/heif', 'image/avif', 'image/bmp'])
    on conflict (id) do nothing;
  end if;
end
$$;
