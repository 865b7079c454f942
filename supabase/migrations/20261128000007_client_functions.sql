-- The client transitions: creating, cancelling and retrying tasks. They run as their owner
-- (security definer) and check the caller themselves: the owner of a new task is the caller's
-- auth.uid(), and a user may act only on their own tasks. They live in darkroom, which the Data
-- API does not expose, so the api function (with its URL checks, callbackUrl address policy and
-- rate limit) is the only way in.

-- The task id the current request names (GET /tasks/:id), or null: the api sets
-- `darkroom.task_id` for the one transaction that reads an ownerless task by its id.
create or replace function darkroom.requested_task_id() returns uuid
language sql stable
set search_path = ''
as $$
  select nullif(current_setting('darkroom.task_id', true), '')::uuid
$$;

-- May the caller act on this task? service_role and the database owner always; a user only on
-- their own tasks; anyone holding the id of an ownerless (anon-key) task. Never null: an anon
-- caller's auth.uid() is null, and `owner = null` would otherwise slip through `if not ...`.
create or replace function darkroom.may_act_on(p_task public.tasks) returns boolean
language sql stable
set search_path = ''
as $$
  select coalesce(
    coalesce(auth.role(), 'service_role') not in ('anon', 'authenticated')
      or p_task.owner is null
      or p_task.owner = auth.uid(),
    false)
$$;

-- Locks a task for a client's cancel or retry: null when it is unknown or not the caller's.
create or replace function darkroom.lock_task_for_caller(p_task_id uuid) returns public.tasks
language plpgsql volatile
set search_path = ''
as $$
declare
  v_task public.tasks;
begin
  select t.* into v_task from public.tasks t where t.id = p_task_id for update;
  if not found or not darkroom.may_act_on(v_task) then
    return null;
  end if;
  return v_task;
end
$$;

-- Raises DR422 (the api answers 422 idempotency_key_reused) unless the task was created by the
-- same request: same imageUrl, callbackUrl and options.
create or replace function darkroom.check_same_request(
  p_task public.tasks,
  p_image_url text,
  p_callback_url text,
  p_options jsonb
) returns void
language plpgsql immutable
set search_path = ''
as $$
begin
  if p_task.image_url is distinct from p_image_url
     or p_task.callback_url is distinct from p_callback_url
     or p_task.options is distinct from coalesce(p_options, '{}'::jsonb) then
    raise exception 'Idempotency-Key % was first used with a different request',
      p_task.idempotency_key using errcode = 'DR422';
  end if;
end
$$;

-- Creates a task, publishes task.created and queues its first stage, in one transaction.
-- The owner is the caller's auth.uid() for anon and authenticated callers (p_owner is ignored
-- for them); service_role and the database owner may name an owner.
create or replace function darkroom.create_task(
  p_image_url text,
  p_callback_url text default null,
  p_options jsonb default '{}'::jsonb,
  p_idempotency_key text default null,
  p_owner uuid default null
) returns table (task_id uuid, trace_id uuid, status text, created boolean)
language plpgsql volatile
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
  v_owner uuid := case when auth.role() in ('anon', 'authenticated') then auth.uid() else p_owner end;
  v_nil constant uuid := '00000000-0000-0000-0000-000000000000'::uuid;
  v_first constant text := darkroom.first_stage();
  v_task public.tasks;
begin
  -- GUARD: an Idempotency-Key needs an owner to be scoped to. The anon key is shared by every
  -- client of a project, so an ownerless key would hand one client's task to another.
  if p_idempotency_key is not null and v_owner is null and auth.role() = 'anon' then
    raise exception 'Idempotency-Key needs a signed-in user: the anon key is shared by every client'
      using errcode = '22023', hint = 'idempotency_key_requires_user';
  end if;

  -- GUARD: a known Idempotency-Key returns the first task and changes nothing, when the
  -- request is the same; the same key with another request is refused (DR422).
  if p_idempotency_key is not null then
    select t.* into v_task from public.tasks t
     where coalesce(t.owner, v_nil) = coalesce(v_owner, v_nil)
       and t.idempotency_key = p_idempotency_key;
    if found then
      perform darkroom.check_same_request(v_task, p_image_url, p_callback_url, p_options);
      return query select v_task.id, v_task.trace_id, v_task.status, false;
      return;
    end if;
  end if;

  insert into public.tasks (owner, image_url, callback_url, options, idempotency_key, stage)
  values (v_owner, p_image_url, p_callback_url, coalesce(p_options, '{}'::jsonb),
          p_idempotency_key, v_first)
  on conflict (coalesce(owner, '00000000-0000-0000-0000-000000000000'::uuid), idempotency_key)
    where idempotency_key is not null
    do nothing
  returning * into v_task;

  -- GUARD: a concurrent request with the same key won the race: return its task.
  if v_task.id is null then
    select t.* into v_task from public.tasks t
     where coalesce(t.owner, v_nil) = coalesce(v_owner, v_nil)
       and t.idempotency_key = p_idempotency_key;
    perform darkroom.check_same_request(v_task, p_image_url, p_callback_url, p_options);
    return query select v_task.id, v_task.trace_id, v_task.status, false;
    return;
  end if;

  perform darkroom.publish_event(v_task, 'task.created', 'api',
    jsonb_strip_nulls(jsonb_build_object('imageUrl', v_task.image_url,
                                         'callbackUrl', v_task.callback_url,
                                         'options', v_task.options)));
  perform pgmq.send(darkroom.stage_queue(v_first),
    jsonb_build_object('taskId', v_task.id, 'traceId', v_task.trace_id));
  return query select v_task.id, v_task.trace_id, v_task.status, true;
end
$$;

-- Creates many tasks in one transaction: p_tasks is a JSON array of
-- {imageUrl, callbackUrl?, options?, idempotencyKey?}. Results come in input order.
create or replace function darkroom.create_tasks(p_tasks jsonb, p_owner uuid default null)
returns table (ord integer, task_id uuid, trace_id uuid, status text, created boolean)
language sql volatile
security definer
set search_path = ''
as $$
  select e.ord::integer, c.task_id, c.trace_id, c.status, c.created
    from jsonb_array_elements(p_tasks) with ordinality as e(item, ord)
   cross join lateral darkroom.create_task(
     e.item ->> 'imageUrl',
     e.item ->> 'callbackUrl',
     coalesce(e.item -> 'options', '{}'::jsonb),
     e.item ->> 'idempotencyKey',
     p_owner
   ) as c
   order by e.ord
$$;

-- Stops a queued or processing task. Its message is dropped when a worker next sees it.
-- Returns the task's status afterwards and whether this call changed it; no row when unknown.
create or replace function darkroom.cancel_task(p_task_id uuid)
returns table (status text, changed boolean)
language plpgsql volatile
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
  v_task public.tasks;
begin
  v_task := darkroom.lock_task_for_caller(p_task_id);
  if v_task.id is null then
    return;
  end if;
  -- GUARD: only a task in flight can be cancelled.
  if v_task.status not in ('queued', 'processing') then
    return query select v_task.status, false;
    return;
  end if;
  update public.tasks t
     set status = 'cancelled', error_code = 'cancelled', error_message = 'Task was cancelled',
         error_stage = v_task.stage, stage_started_at = null, retry_at = null, updated_at = now()
   where t.id = v_task.id returning * into v_task;
  perform darkroom.publish_event(v_task, 'task.cancelled', 'api',
    jsonb_build_object('stage', v_task.stage));
  return query select v_task.status, true;
end
$$;

-- Re-runs a failed task from the stage where it failed, with a fresh budget of tries there.
-- Returns the task's status afterwards and whether this call changed it; no row when unknown.
create or replace function darkroom.retry_task(p_task_id uuid)
returns table (status text, changed boolean)
language plpgsql volatile
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
  v_task public.tasks;
  v_stage text;
begin
  v_task := darkroom.lock_task_for_caller(p_task_id);
  if v_task.id is null then
    return;
  end if;
  -- GUARD: only a failed task can be retried.
  if v_task.status <> 'failed' then
    return query select v_task.status, false;
    return;
  end if;
  v_stage := coalesce(v_task.error_stage, v_task.stage, darkroom.first_stage());
  update public.tasks t
     set status = 'queued', stage = v_stage, attempts = t.attempts - v_stage,
         error_code = null, error_message = null, error_stage = null, stage_started_at = null,
         retry_at = null, completed_at = null, updated_at = now()
   where t.id = v_task.id returning * into v_task;
  perform darkroom.publish_event(v_task, 'task.retry_scheduled', 'api',
    jsonb_build_object('stage', v_stage, 'manual', true, 'delaySeconds', 0));
  perform pgmq.send(darkroom.stage_queue(v_stage),
    jsonb_build_object('taskId', v_task.id, 'traceId', v_task.trace_id));
  return query select v_task.status, true;
end
$$;
