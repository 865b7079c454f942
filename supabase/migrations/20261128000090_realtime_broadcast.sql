-- Live updates through Realtime Broadcast from the database, which works on hosted Supabase for
-- every subscriber, anon included (postgres_changes cannot serve ownerless tasks there: its RLS
-- check never names a task).
--
-- Topics (private channels only, authorised by the policies on realtime.messages below):
--   task:<taskId>  the task's row summaries and events; a user's own task, or an ownerless one
--                  (whoever knows its unguessable id, as GET /tasks/:id allows)
--   user:<ownerId> the same messages for every task of that user; that user only
-- Events (the broadcast `event` field):
--   task.state            {taskId, status, stage, updatedAt} on each insert/update of the task row
--   <eventType>           the INEvent (eventId, eventType, taskId, traceId, timestamp, source,
--                         payload) on each insert into public.events, e.g. task.completed
-- realtime.send adds the message id to the payload as `id` (Supabase's function does).
--
-- Applies everywhere: where the realtime schema is absent (plain PostgreSQL, PGlite without the
-- local stand-in) the triggers send nothing and the policies are not created.

create schema if not exists darkroom;

-- Sends `p_payload` as `p_event` on task:<task> and, for an owned task, on user:<owner>.
create or replace function darkroom._broadcast(p_payload jsonb, p_event text, p_task uuid, p_owner uuid)
returns void
language plpgsql
set search_path = ''
as $$
declare
  v_topic text := current_setting('realtime.topic', true);
begin
  -- GUARD: no Realtime in this database (plain PostgreSQL, PGlite): nothing to send to.
  if to_regprocedure('realtime.send(jsonb,text,text,boolean)') is null then
    return;
  end if;
  -- realtime.send swallows its own errors (a WARNING): a lost live update never fails a stage.
  if p_task is not null then
    perform realtime.send(p_payload, p_event, 'task:' || p_task::text, true);
  end if;
  if p_owner is not null then
    perform realtime.send(p_payload, p_event, 'user:' || p_owner::text, true);
  end if;
  -- realtime.send sets realtime.topic for the rest of the transaction: put it back, so the
  -- policies that read it see only the topic a Realtime server names.
  perform set_config('realtime.topic', coalesce(v_topic, ''), true);
end
$$;

-- security definer: realtime.messages has row level security and no insert policy; the owner of
-- the migrations writes it whatever role changed the row.
create or replace function darkroom._broadcast_task_state() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  -- GUARD: an update that changed nothing a subscriber is told about: stay quiet.
  if TG_OP = 'UPDATE' and (OLD.status, OLD.stage, OLD.updated_at)
      is not distinct from (NEW.status, NEW.stage, NEW.updated_at) then
    return null;
  end if;
  perform darkroom._broadcast(
    jsonb_build_object(
      'taskId', NEW.id,
      'status', NEW.status,
      'stage', NEW.stage,
      'updatedAt', to_char(NEW.updated_at at time zone 'utc', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
    ),
    'task.state', NEW.id, NEW.owner);
  return null; -- AFTER trigger: the result is ignored
end
$$;

create or replace function darkroom._broadcast_event() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_event jsonb := jsonb_build_object(
    'eventId', NEW.id,
    'eventType', NEW.event_type,
    'traceId', NEW.trace_id,
    'timestamp', floor(extract(epoch from NEW.created_at) * 1000)::bigint,
    'source', NEW.source,
    'payload', NEW.payload
  ) || case when NEW.task_id is null then '{}'::jsonb
            else jsonb_build_object('taskId', NEW.task_id) end;
begin
  -- GUARD: Realtime refuses large messages (256 KB on the free plan): send the event without
  -- its payload, which GET /tasks/:id/events still gives in full.
  if octet_length(v_event::text) > 65536 then
    v_event := v_event || jsonb_build_object('payload', '{}'::jsonb, 'payloadOmitted', true);
  end if;
  perform darkroom._broadcast(v_event, NEW.event_type, NEW.task_id, NEW.owner);
  return null;
end
$$;

revoke all on function darkroom._broadcast(jsonb, text, uuid, uuid) from public;
revoke all on function darkroom._broadcast_task_state() from public;
revoke all on function darkroom._broadcast_event() from public;

drop trigger if exists broadcast_task_state on public.tasks;
create trigger broadcast_task_state
  after insert or update on public.tasks
  for each row execute function darkroom._broadcast_task_state();

drop trigger if exists broadcast_event on public.events;
create trigger broadcast_event
  after insert on public.events
  for each row execute function darkroom._broadcast_event();

-- Realtime Authorization: a private channel's join is allowed when the subscriber, with their
-- role and JWT claims and `realtime.topic` set to the channel's topic, may select a broadcast
-- row of realtime.messages (Supabase inserts one and asks, then rolls back).
do $$
begin
  -- GUARD: no Realtime here (plain PostgreSQL, PGlite without the stand-in): nothing to authorise.
  if to_regclass('realtime.messages') is null
      or to_regprocedure('realtime.topic()') is null then
    return;
  end if;

  -- An ownerless task may be read by whoever names its id (as the api's GET /tasks/:id does with
  -- darkroom.task_id); the Realtime server names it with the topic it authorises.
  drop policy if exists tasks_select_named_by_realtime_topic on public.tasks;
  create policy tasks_select_named_by_realtime_topic on public.tasks
    for select to anon, authenticated
    using (
      owner is null
      -- The topic parsed once (an init plan), so the primary key serves it: `'task:' || id`
      -- would read every ownerless task on each query of the table.
      and id = (select substring(realtime.topic() from
                  '^task:([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$')::uuid)
    );

  drop policy if exists darkroom_task_topic_select on realtime.messages;
  create policy darkroom_task_topic_select on realtime.messages
    for select to anon, authenticated
    using (
      realtime.messages.extension = 'broadcast'
      and exists (
        select 1
          from public.tasks t
         -- case: the topic is matched before the cast, so no other topic can make it fail.
         where t.id = case
                 when (select realtime.topic()) ~ '^task:[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$'
                 then substr((select realtime.topic()), 6)::uuid
               end
           and (t.owner is null or t.owner = (select auth.uid()))
      )
    );

  drop policy if exists darkroom_user_topic_select on realtime.messages;
  create policy darkroom_user_topic_select on realtime.messages
    for select to authenticated
    using (
      realtime.messages.extension = 'broadcast'
      and (select auth.uid()) is not null
      and (select realtime.topic()) = 'user:' || (select auth.uid())::text
    );
end
$$;
