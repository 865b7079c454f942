-- The SQL functions that own every state transition of a task. Each runs in ONE transaction:
-- it locks the task row, checks the stage it expects, updates the row, inserts the events,
-- sends the next stage's message and deletes (or archives) the handled one. A duplicate or late
-- delivery finds the row past that stage and changes nothing but removing its message.
-- Workers call these; they never write task state by hand.

alter table public.tasks add column stage_started_at timestamptz;

-- The pgmq queue of a stage.
create or replace function public._stage_queue(p_stage text) returns text
language sql immutable
set search_path = ''
as $$
  select case p_stage
    when 'download' then 'image_download'
    when 'metadata' then 'metadata_processing'
    when 'ai' then 'ai_processing'
  end
$$;

-- Appends one event for a task. MUST run in the transaction of the state change it reports.
create or replace function public._publish_event(
  p_task public.tasks,
  p_event_type text,
  p_source text,
  p_payload jsonb
) returns public.events
language sql volatile
set search_path = ''
as $$
  insert into public.events (event_type, task_id, trace_id, owner, source, payload)
  values (p_event_type, p_task.id, p_task.trace_id, p_task.owner, p_source,
          coalesce(p_payload, '{}'::jsonb))
  returning *
$$;

-- Milliseconds between two instants.
create or replace function public._ms_between(p_from timestamptz, p_to timestamptz)
returns bigint
language sql immutable
set search_path = ''
as $$
  select (extract(epoch from (p_to - p_from)) * 1000)::bigint
$$;

-- Tries made at a stage so far.
create or replace function public._attempts_at(p_task public.tasks, p_stage text) returns integer
language sql immutable
set search_path = ''
as $$
  select case p_stage when 'download' then p_task.download_attempts
                      when 'metadata' then p_task.metadata_attempts
                      else p_task.ai_attempts end
$$;

-- Creates a task, publishes task.created and queues its download, in one transaction.
-- The owner is the caller's auth.uid() for anon and authenticated callers (p_owner is ignored
-- for them); service_role and the database owner may name an owner.
create or replace function public.create_task(
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
  v_nil constant uuid := '00000000-0000-0000-0000-000000000000';
  v_task public.tasks;
begin
  -- GUARD: an Idempotency-Key needs an owner to be scoped to. The anon key is shared by every
  -- client of a project, so an ownerless key would hand one client's task to another.
  if p_idempotency_key is not null and v_owner is null and auth.role() = 'anon' then
    raise exception 'Idempotency-Key needs a signed-in user: the anon key is shared by every client'
      using errcode = '22023', hint = 'idempotency_key_requires_user';
  end if;

  -- GUARD: a known Idempotency-Key returns the first task and changes nothing.
  if p_idempotency_key is not null then
    select t.* into v_task from public.tasks t
     where coalesce(t.owner, v_nil) = coalesce(v_owner, v_nil)
       and t.idempotency_key = p_idempotency_key;
    if found then
      return query select v_task.id, v_task.trace_id, v_task.status, false;
      return;
    end if;
  end if;

  insert into public.tasks (owner, image_url, callback_url, options, idempotency_key)
  values (v_owner, p_image_url, p_callback_url, coalesce(p_options, '{}'::jsonb), p_idempotency_key)
  on conflict (coalesce(owner, '00000000-0000-0000-0000-000000000000'::uuid), idempotency_key)
    where idempotency_key is not null
    do nothing
  returning * into v_task;

  -- GUARD: a concurrent request with the same key won the race: return its task.
  if v_task.id is null then
    select t.* into v_task from public.tasks t
     where coalesce(t.owner, v_nil) = coalesce(v_owner, v_nil)
       and t.idempotency_key = p_idempotency_key;
    return query select v_task.id, v_task.trace_id, v_task.status, false;
    return;
  end if;

  perform public._publish_event(v_task, 'task.created', 'api',
    jsonb_strip_nulls(jsonb_build_object('imageUrl', v_task.image_url,
                                         'callbackUrl', v_task.callback_url,
                                         'options', v_task.options)));
  perform pgmq.send('image_download',
    jsonb_build_object('taskId', v_task.id, 'traceId', v_task.trace_id));
  return query select v_task.id, v_task.trace_id, v_task.status, true;
end
$$;

-- Creates many tasks in one transaction: p_tasks is a JSON array of
-- {imageUrl, callbackUrl?, options?, idempotencyKey?}. Results come in input order.
create or replace function public.create_tasks(p_tasks jsonb, p_owner uuid default null)
returns table (ord integer, task_id uuid, trace_id uuid, status text, created boolean)
language sql volatile
security definer
set search_path = ''
as $$
  select e.ord::integer, c.task_id, c.trace_id, c.status, c.created
    from jsonb_array_elements(p_tasks) with ordinality as e(item, ord)
   cross join lateral public.create_task(
     e.item ->> 'imageUrl',
     e.item ->> 'callbackUrl',
     coalesce(e.item -> 'options', '{}'::jsonb),
     e.item ->> 'idempotencyKey',
     p_owner
   ) as c
   order by e.ord
$$;

-- Claims a batch of messages read from a stage's queue. For each message it returns whether
-- the worker should proceed and, if so, the task and its image as JSON.
create or replace function public.begin_stage(
  p_stage text,
  p_msg_ids bigint[],
  p_task_ids uuid[],
  p_read_cts integer[],
  p_max_attempts integer
) returns table (msg_id bigint, task_id uuid, proceed boolean, attempt integer, task jsonb, image jsonb)
language plpgsql volatile
set search_path = ''
as $$
#variable_conflict use_column
declare
  v_queue constant text := public._stage_queue(p_stage);
  v_task public.tasks;
  v_attempt integer;
  i integer;
begin
  if v_queue is null then
    raise exception 'unknown stage: %', p_stage using errcode = '22023';
  end if;
  for i in 1 .. coalesce(array_length(p_msg_ids, 1), 0) loop
    select t.* into v_task from public.tasks t where t.id = p_task_ids[i] for update;

    -- GUARD: unknown task, or not at this stage (duplicate or late delivery, cancelled,
    -- already failed): delete the message, change nothing.
    if not found
       or v_task.status not in ('queued', 'processing')
       or v_task.stage is distinct from p_stage then
      perform pgmq.delete(v_queue, p_msg_ids[i]);
      return query select p_msg_ids[i], p_task_ids[i], false, 0, null::jsonb, null::jsonb;
      continue;
    end if;

    -- GUARD: delivered more often than MAX_ATTEMPTS (a worker died on it each time): give up.
    if p_read_cts[i] > p_max_attempts then
      update public.tasks t
         set status = 'failed', error_code = 'internal', error_stage = p_stage,
             error_message = format('Stage %s gave up after %s deliveries', p_stage, p_read_cts[i] - 1),
             updated_at = now()
       where t.id = v_task.id
      returning * into v_task;
      perform public._publish_event(v_task, 'task.failed', 'coordinator',
        jsonb_build_object('stage', p_stage, 'code', 'internal', 'message', v_task.error_message,
                           'attempts', p_read_cts[i] - 1));
      perform pgmq.archive(v_queue, p_msg_ids[i]);
      return query select p_msg_ids[i], p_task_ids[i], false, 0, null::jsonb, null::jsonb;
      continue;
    end if;

    update public.tasks t
       set status = 'processing',
           download_attempts = t.download_attempts + (p_stage = 'download')::integer,
           metadata_attempts = t.metadata_attempts + (p_stage = 'metadata')::integer,
           ai_attempts = t.ai_attempts + (p_stage = 'ai')::integer,
           stage_started_at = coalesce(
             case when t.status = 'processing' and t.stage_started_at is not null
                  then t.stage_started_at end, now()),
           updated_at = now()
     where t.id = v_task.id
    returning * into v_task;
    v_attempt := public._attempts_at(v_task, p_stage);
    return query
      select p_msg_ids[i], v_task.id, true, v_attempt, to_jsonb(v_task),
             (select to_jsonb(im) from public.images im where im.task_id = v_task.id);
  end loop;
end
$$;

-- Locks the task a stage outcome is about. Returns it when the outcome applies, or null after
-- deleting the message when it does not.
-- GUARD: duplicate or late delivery (stage already done, task cancelled or failed): delete the
-- message, change nothing.
create or replace function public._lock_task_at_stage(
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
    perform pgmq.delete(public._stage_queue(p_stage), p_msg_id);
    return null;
  end if;
  return v_task;
end
$$;

-- Commits the outcome of a successful stage: the stage's data, its event(s), the next stage's
-- message, and the deletion of the handled message. Returns 'advanced', 'completed' or 'ignored'.
create or replace function public.complete_stage(
  p_task_id uuid,
  p_stage text,
  p_msg_id bigint,
  p_result jsonb,
  p_source text
) returns text
language plpgsql volatile
set search_path = ''
as $$
declare
  v_queue constant text := public._stage_queue(p_stage);
  v_task public.tasks;
  v_image public.images;
  v_ms bigint;
begin
  v_task := public._lock_task_at_stage(p_task_id, p_stage, p_msg_id);
  if v_task.id is null then
    return 'ignored'; -- duplicate or late delivery: the message is gone, nothing changed
  end if;

  v_ms := public._ms_between(coalesce(v_task.stage_started_at, v_task.updated_at), now());

  if p_stage = 'download' then
    insert into public.images as im (task_id, owner, sha256, content_type, byte_size, storage_path)
    values (v_task.id, v_task.owner, p_result ->> 'sha256', p_result ->> 'contentType',
            (p_result ->> 'byteSize')::bigint, p_result ->> 'storagePath')
    on conflict (task_id) do update
      set sha256 = excluded.sha256, content_type = excluded.content_type,
          byte_size = excluded.byte_size, storage_path = excluded.storage_path,
          width = null, height = null, format = null, metadata = null, analysis = null,
          thumbnail = null,
          updated_at = now()
    returning * into v_image;
    update public.tasks t set stage = 'metadata', stage_started_at = null, updated_at = now()
     where t.id = v_task.id returning * into v_task;
    perform public._publish_event(v_task, 'image.downloaded', p_source,
      jsonb_build_object('imageId', v_image.id, 'sha256', v_image.sha256,
                         'contentType', v_image.content_type, 'byteSize', v_image.byte_size,
                         'durationMs', v_ms));
    perform pgmq.send('metadata_processing',
      jsonb_build_object('taskId', v_task.id, 'traceId', v_task.trace_id));

  elsif p_stage = 'metadata' then
    update public.images im
       set width = (p_result ->> 'width')::integer, height = (p_result ->> 'height')::integer,
           format = p_result ->> 'format', metadata = p_result -> 'metadata',
           thumbnail = nullif(p_result -> 'thumbnail', 'null'::jsonb), updated_at = now()
     where im.task_id = v_task.id
    returning * into v_image;
    if not found then
      raise exception 'task % has no image to describe', v_task.id using errcode = 'P0002';
    end if;
    update public.tasks t set stage = 'ai', stage_started_at = null, updated_at = now()
     where t.id = v_task.id returning * into v_task;
    perform public._publish_event(v_task, 'image.metadata_extracted', p_source,
      jsonb_build_object('imageId', v_image.id, 'width', v_image.width, 'height', v_image.height,
                         'format', v_image.format,
                         'make', v_image.metadata -> 'make', 'model', v_image.metadata -> 'model',
                         'takenAt', v_image.metadata -> 'takenAt',
                         'orientation', v_image.metadata -> 'orientation',
                         'gps', v_image.metadata -> 'gps',
                         'partial', coalesce(v_image.metadata -> 'partial', 'false'::jsonb),
                         'durationMs', v_ms));
    perform pgmq.send('ai_processing',
      jsonb_build_object('taskId', v_task.id, 'traceId', v_task.trace_id));

  elsif p_stage = 'ai' then
    update public.images im set analysis = p_result -> 'analysis', updated_at = now()
     where im.task_id = v_task.id
    returning * into v_image;
    if not found then
      raise exception 'task % has no image to analyse', v_task.id using errcode = 'P0002';
    end if;
    update public.tasks t
       set status = 'completed', stage = null, stage_started_at = null,
           error_code = null, error_message = null, error_stage = null,
           completed_at = now(), updated_at = now()
     where t.id = v_task.id returning * into v_task;
    perform public._publish_event(v_task, 'image.analyzed', p_source,
      jsonb_build_object('imageId', v_image.id) || (v_image.analysis - 'usage')
        || jsonb_build_object('usage', v_image.analysis -> 'usage', 'durationMs', v_ms));
    perform public._publish_event(v_task, 'task.completed', p_source,
      jsonb_build_object('imageId', v_image.id, 'status', 'completed',
                         'durationMs', public._ms_between(v_task.created_at, v_task.completed_at)));
  else
    raise exception 'unknown stage: %', p_stage using errcode = '22023';
  end if;

  -- MUST delete the message in the same transaction as the state change, or a crash replays
  -- the stage.
  perform pgmq.delete(v_queue, p_msg_id);
  return case when p_stage = 'ai' then 'completed' else 'advanced' end;
end
$$;

-- Ends a task as failed at a stage: error recorded, task.failed published, message archived.
create or replace function public.fail_stage(
  p_task_id uuid,
  p_stage text,
  p_msg_id bigint,
  p_code text,
  p_message text,
  p_source text
) returns text
language plpgsql volatile
set search_path = ''
as $$
declare
  v_queue constant text := public._stage_queue(p_stage);
  v_task public.tasks;
begin
  v_task := public._lock_task_at_stage(p_task_id, p_stage, p_msg_id);
  if v_task.id is null then
    return 'ignored'; -- duplicate or late delivery: the message is gone, nothing changed
  end if;

  update public.tasks t
     set status = 'failed', error_code = p_code, error_message = p_message, error_stage = p_stage,
         stage_started_at = null, updated_at = now()
   where t.id = v_task.id returning * into v_task;
  perform public._publish_event(v_task, 'task.failed', p_source,
    jsonb_build_object('stage', p_stage, 'code', p_code, 'message', p_message,
                       'attempts', public._attempts_at(v_task, p_stage)));
  -- Archived, not deleted: the failed message stays inspectable in pgmq.a_<queue>.
  perform pgmq.archive(v_queue, p_msg_id);
  return 'failed';
end
$$;

-- Schedules another try of a stage after a transient error: the message becomes visible again
-- after p_delay_seconds (its read_ct counts the tries); task.retry_scheduled is published.
create or replace function public.schedule_retry(
  p_task_id uuid,
  p_stage text,
  p_msg_id bigint,
  p_delay_seconds integer,
  p_code text,
  p_message text,
  p_source text
) returns text
language plpgsql volatile
set search_path = ''
as $$
declare
  v_queue constant text := public._stage_queue(p_stage);
  v_task public.tasks;
begin
  v_task := public._lock_task_at_stage(p_task_id, p_stage, p_msg_id);
  if v_task.id is null then
    return 'ignored'; -- duplicate or late delivery: the message is gone, nothing changed
  end if;

  update public.tasks t set updated_at = now() where t.id = v_task.id returning * into v_task;
  perform public._publish_event(v_task, 'task.retry_scheduled', p_source,
    jsonb_build_object('stage', p_stage, 'code', p_code, 'message', p_message,
                       'delaySeconds', p_delay_seconds,
                       'attempt', public._attempts_at(v_task, p_stage)));
  perform pgmq.set_vt(v_queue, p_msg_id, greatest(p_delay_seconds, 0));
  return 'retry_scheduled';
end
$$;

-- May the caller act on this task? service_role and the database owner always; a user only on
-- their own tasks; anyone holding the id of an ownerless (anon-key) task. Never null: an anon
-- caller's auth.uid() is null, and `owner = null` would otherwise slip through `if not ...`.
create or replace function public._may_act_on(p_task public.tasks) returns boolean
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
create or replace function public._lock_task_for_caller(p_task_id uuid) returns public.tasks
language plpgsql volatile
set search_path = ''
as $$
declare
  v_task public.tasks;
begin
  select t.* into v_task from public.tasks t where t.id = p_task_id for update;
  if not found or not public._may_act_on(v_task) then
    return null;
  end if;
  return v_task;
end
$$;

-- Stops a queued or processing task. Its message is dropped when a worker next sees it.
-- Returns the task's status afterwards and whether this call changed it; no row when unknown.
create or replace function public.cancel_task(p_task_id uuid)
returns table (status text, changed boolean)
language plpgsql volatile
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
  v_task public.tasks;
begin
  v_task := public._lock_task_for_caller(p_task_id);
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
         error_stage = v_task.stage, stage_started_at = null, updated_at = now()
   where t.id = v_task.id returning * into v_task;
  perform public._publish_event(v_task, 'task.cancelled', 'api',
    jsonb_build_object('stage', v_task.stage));
  return query select v_task.status, true;
end
$$;

-- Re-runs a failed task from the stage where it failed.
-- Returns the task's status afterwards and whether this call changed it; no row when unknown.
create or replace function public.retry_task(p_task_id uuid)
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
  v_task := public._lock_task_for_caller(p_task_id);
  if v_task.id is null then
    return;
  end if;
  -- GUARD: only a failed task can be retried.
  if v_task.status <> 'failed' then
    return query select v_task.status, false;
    return;
  end if;
  v_stage := coalesce(v_task.error_stage, v_task.stage, 'download');
  update public.tasks t
     set status = 'queued', stage = v_stage, error_code = null, error_message = null,
         error_stage = null, stage_started_at = null, completed_at = null, updated_at = now()
   where t.id = v_task.id returning * into v_task;
  perform public._publish_event(v_task, 'task.retry_scheduled', 'api',
    jsonb_build_object('stage', v_stage, 'manual', true, 'delaySeconds', 0));
  perform pgmq.send(public._stage_queue(v_stage),
    jsonb_build_object('taskId', v_task.id, 'traceId', v_task.trace_id));
  return query select v_task.status, true;
end
$$;

-- Workers' transitions are for service_role only; clients get create/cancel/retry. Supabase
-- grants every new function in public to anon and authenticated by default: take it all back,
-- then grant what each role may call.
revoke all on all functions in schema public from public, anon, authenticated;

grant execute on function public.create_task(text, text, jsonb, text, uuid)
  to anon, authenticated, service_role;
grant execute on function public.create_tasks(jsonb, uuid) to anon, authenticated, service_role;
grant execute on function public.cancel_task(uuid) to anon, authenticated, service_role;
grant execute on function public.retry_task(uuid) to anon, authenticated, service_role;
grant execute on function public.begin_stage(text, bigint[], uuid[], integer[], integer)
  to service_role;
grant execute on function public.complete_stage(uuid, text, bigint, jsonb, text) to service_role;
grant execute on function public.fail_stage(uuid, text, bigint, text, text, text) to service_role;
grant execute on function public.schedule_retry(uuid, text, bigint, integer, text, text, text)
  to service_role;
-- The worker transitions run as their caller, so service_role also needs their internals.
grant execute on function public._publish_event(public.tasks, text, text, jsonb),
  public._lock_task_at_stage(uuid, text, bigint), public._stage_queue(text),
  public._ms_between(timestamptz, timestamptz), public._attempts_at(public.tasks, text)
  to service_role;
