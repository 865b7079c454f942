-- Helpers the transitions share: publishing an event, timing a stage, counting tries, and
-- locking a task for a stage outcome.

-- Appends one event for a task. MUST run in the transaction of the state change it reports.
create or replace function darkroom.publish_event(
  p_task public.tasks,
  p_event_type text,
  p_source text,
  p_payload jsonb
) returns public.events
language plpgsql volatile
set search_path = ''
as $$
declare
  v_event public.events;
begin
  -- plpgsql, not sql: a sql function with SET is never inlined and plans its insert on every
  -- call; plpgsql keeps the plan for the session (every stage commit publishes through here).
  insert into public.events (event_type, task_id, trace_id, owner, source, payload)
  values (p_event_type, p_task.id, p_task.trace_id, p_task.owner, p_source,
          coalesce(p_payload, '{}'::jsonb))
  returning * into v_event;
  return v_event;
end
$$;

-- Milliseconds between two instants.
create or replace function darkroom.ms_between(p_from timestamptz, p_to timestamptz)
returns bigint
language sql immutable
set search_path = ''
as $$
  select (extract(epoch from (p_to - p_from)) * 1000)::bigint
$$;

-- Tries made at a stage so far (0 before the first).
create or replace function darkroom.attempts_at(p_task public.tasks, p_stage text) returns integer
language sql immutable
set search_path = ''
as $$
  select coalesce((p_task.attempts ->> p_stage)::integer, 0)
$$;

-- Locks the task a stage outcome is about. Returns it when the outcome applies, or null after
-- deleting the message when it does not.
-- GUARD: duplicate or late delivery (stage already done, task cancelled or failed): delete the
-- message, change nothing.
create or replace function darkroom.lock_task_at_stage(
  p_task_id uuid,
  p_stage text,
  p_msg_id bigint
) returns public.tasks
language plpgsql volatile
set search_path = ''
as $$
declare
  v_task public.tasks;
begin
  select t.* into v_task from public.tasks t where t.id = p_task_id for update;
  if not found or v_task.status <> 'processing' or v_task.stage is distinct from p_stage then
    perform pgmq.delete(darkroom.stage_queue(p_stage), p_msg_id);
    return null;
  end if;
  return v_task;
end
$$;
