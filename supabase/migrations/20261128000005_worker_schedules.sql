-- On Supabase, pg_cron + pg_net invoke each worker function every few seconds, the way the
-- local platform's scheduler calls them in-process. The project URL and service_role key come
-- from Vault (secrets `project_url` and `service_role_key`), never from this file.
-- Where pg_cron, pg_net or Vault is missing (plain PostgreSQL, PGlite) nothing is scheduled.

-- Calls a worker function when its queue has a visible message. Returns the pg_net request id,
-- or null when there was nothing to do or the Vault secrets are missing.
create or replace function public.invoke_worker(p_function text, p_queue text)
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
     into v_key using 'service_role_key';
  if v_url is null or v_key is null then
    raise warning 'darkroom: Vault secrets project_url and service_role_key are not set';
    return null;
  end if;
  return net.http_post(
    url := v_url || '/functions/v1/' || p_function,
    headers := jsonb_build_object('Authorization', 'Bearer ' || v_key,
                                  'Content-Type', 'application/json'),
    body := '{}'::jsonb,
    timeout_milliseconds := 60000
  );
end
$$;
revoke all on function public.invoke_worker(text, text) from public, anon, authenticated;

do $$
begin
  if exists (select 1 from pg_available_extensions where name = 'pg_cron')
     and exists (select 1 from pg_available_extensions where name = 'pg_net')
     and exists (select 1 from pg_namespace where nspname = 'vault') then
    create extension if not exists pg_cron;
    create extension if not exists pg_net;
    perform cron.schedule('darkroom-download-worker', '2 seconds',
      $cmd$ select public.invoke_worker('download-worker', 'image_download') $cmd$);
    perform cron.schedule('darkroom-metadata-worker', '2 seconds',
      $cmd$ select public.invoke_worker('metadata-worker', 'metadata_processing') $cmd$);
    perform cron.schedule('darkroom-ai-worker', '2 seconds',
      $cmd$ select public.invoke_worker('ai-worker', 'ai_processing') $cmd$);
  end if;
end
$$;
