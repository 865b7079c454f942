-- Queue privileges. The workers reach Postgres through SUPABASE_DB_URL (the postgres role, which
-- owns the queues); service_role may also run the worker transitions (a server holding the
-- service key, the tests). With the pgmq extension, as on Supabase, service_role starts with no
-- privilege on schema pgmq at all: grant exactly what the transitions and a worker's
-- read/set_vt/metrics need, on Darkroom's queues only. anon and authenticated get nothing.

grant usage on schema pgmq to service_role;
-- list_queues() and metrics() read the catalogue of queues.
grant select on pgmq.meta to service_role;
-- The extension leaves its functions executable by PUBLIC; our layer does not. Either way the
-- table privileges below decide which queues a call can touch (no CREATE on the schema, so no
-- pgmq.create, and no ownership, so no drop_queue).
grant execute on all functions in schema pgmq to service_role;

-- Grants one queue to service_role: messages read, sent, hidden, deleted and archived; the
-- message id sequence read by metrics(). Idempotent.
create or replace function public._grant_queue_to_service_role(p_queue text) returns void
language plpgsql volatile
set search_path = ''
as $$
begin
  execute format('grant select, insert, update, delete on pgmq.%I to service_role', 'q_' || p_queue);
  execute format('grant select, insert on pgmq.%I to service_role', 'a_' || p_queue);
  execute format('grant select on sequence %s to service_role',
                 pg_get_serial_sequence(format('pgmq.%I', 'q_' || p_queue), 'msg_id'));
end
$$;
revoke all on function public._grant_queue_to_service_role(text) from public, anon, authenticated;

select public._grant_queue_to_service_role(q)
  from unnest(array['image_download', 'metadata_processing', 'ai_processing']) as q;
