-- Grants: who may use what, in one place. Supabase grants every new table, function and
-- sequence in public to anon and authenticated by default; everything here starts from nothing
-- and grants by name. tests/integration/security_findings_test.ts pins the result: every object
-- a client role can reach, with the rule that guards it.

-- GUARD: revoke Supabase's default grants on what exists, and on what later migrations make
-- (for the role running them), so that a forgotten revoke can never open a door.
revoke all on all tables in schema public from anon, authenticated;
revoke all on all sequences in schema public from public, anon, authenticated;
revoke all on all functions in schema public from public, anon, authenticated;
alter default privileges in schema public revoke all on tables from anon, authenticated;
alter default privileges in schema public revoke all on sequences from public, anon, authenticated;
alter default privileges in schema public revoke all on functions from public, anon, authenticated;
revoke all on all tables in schema darkroom from public, anon, authenticated;
revoke all on all functions in schema darkroom from public, anon, authenticated;
alter default privileges in schema darkroom revoke all on functions from public;

grant usage on schema public to anon, authenticated, service_role;
-- darkroom is not exposed through the Data API; clients need USAGE only so that the api can run
-- the client functions as their role and RLS policies can call requested_task_id().
grant usage on schema darkroom to anon, authenticated, service_role;

-- Client-visible tables: read only, row level security decides which rows (20261128000010).
grant select on public.tasks, public.images, public.events, public.image_tags, public.deliveries
  to anon, authenticated;
grant all on public.tasks, public.images, public.events, public.image_tags, public.deliveries
  to service_role;

-- Client transitions (they check the caller themselves) and the RLS helper.
grant execute on function darkroom.create_task(text, text, jsonb, text, uuid),
  darkroom.create_tasks(jsonb, uuid), darkroom.cancel_task(uuid), darkroom.retry_task(uuid),
  darkroom.requested_task_id()
  to anon, authenticated, service_role;

-- Worker transitions and the rate limit: service_role (and the owner) only.
grant execute on function darkroom.begin_stage(text, bigint[], uuid[], integer),
  darkroom.complete_stage(uuid, text, bigint, jsonb, text),
  darkroom.complete_stages(text, jsonb, text),
  darkroom.fail_stage(uuid, text, bigint, text, text, text),
  darkroom.schedule_retry(uuid, text, bigint, integer, text, text, text),
  darkroom.take_rate_limit_tokens(text, integer, integer, double precision)
  to service_role;
grant select on darkroom.stages, darkroom.event_types, darkroom.worker_queues to service_role;
grant execute on function darkroom.stage_queue(text), darkroom.next_stage(text),
  darkroom.first_stage()
  to service_role;

-- Queues. The workers reach Postgres through SUPABASE_DB_URL (the postgres role, which owns the
-- queues); service_role may also run a worker (a server holding the service key, the tests).
-- With the pgmq extension, as on Supabase, service_role starts with no privilege on schema pgmq:
-- grant exactly what reading and the transitions need, on Darkroom's queues only. anon and
-- authenticated get nothing.
grant usage on schema pgmq to service_role;
-- list_queues() and metrics() read the catalogue of queues.
grant select on pgmq.meta to service_role;
-- The extension leaves its functions executable by PUBLIC; our layer does not. Either way the
-- table privileges below decide which queues a call can touch (no CREATE on the schema, so no
-- pgmq.create, and no ownership, so no drop_queue).
grant execute on all functions in schema pgmq to service_role;

-- Each stage's queue was granted when darkroom.add_stage made it (20261128000002).
revoke all on function darkroom.grant_queue_to_service_role(text), darkroom.add_stage(text, text, text, text, text, text) from public;

