-- The worker transitions: every change a stage worker makes to a task. Each runs in ONE
-- transaction: it locks the task row, checks the stage it expects, updates the row, inserts the
-- events, sends the next stage's message and deletes (or archives) the handled one. A duplicate
-- or late delivery finds the row past that stage and changes nothing but removing its message.
-- They run as their owner (security definer) and only service_role may call them.

-- Claims a batch of messages read from a stage's queue. For each message it returns whether
-- the worker should proceed and, if so, the try it is (the task's count for the stage, this
-- one included), the task and its image as JSON.
create or replace function darkroom.begin_stage(
  p_stage text,
  p_msg_ids bigint[],
  p_task_ids uuid[],
  p_max_attempts integer
) returns table (msg_id bigint, task_id uuid, proceed boolean, attempt integer, task jsonb, image jsonb)
language plpgsql volatile
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
  v_queue constant text := darkroom.stage_queue(p_stage);
  v_task public.tasks;
  v_tries integer;
begin
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

    v_tries := darkroom.attempts_at(v_task, p_stage);
    -- GUARD: every try the policy allows was begun, and this delivery is another one (a worker
    -- died without recording an outcome): give up rather than loop on a message that kills.
    if v_tries >= p_max_attempts then
      update public.tasks t
         set status = 'failed', error_code = 'internal', error_stage = p_stage,
             error_message = format('Stage %s gave up after %s tries without an outcome',
                                    p_stage, v_tries),
             stage_started_at = null, retry_at = null, updated_at = now()
       where t.id = v_task.id
      returning * into v_task;
      perform darkroom.publish_event(v_task, 'task.failed', 'coordinator',
        jsonb_build_object('stage', p_stage, 'code', 'internal', 'message', v_task.error_message,
                           'attempts', v_tries));
      perform pgmq.archive(v_queue, p_msg_ids[i]);
      return query select p_msg_ids[i], p_task_ids[i], false, 0, null::jsonb, null::jsonb;
      continue;
    end if;

    update public.tasks t
       set status = 'processing',
           attempts = t.attempts || jsonb_build_object(p_stage, v_tries + 1),
           stage_started_at = now(),
           updated_at = now()
     where t.id = v_task.id
    returning * into v_task;
    return query
      select p_msg_ids[i], v_task.id, true, v_tries + 1, to_jsonb(v_task),
             (select to_jsonb(im) from public.images im where im.task_id = v_task.id);
  end loop;
end
$$;

-- Commits the outcome of a successful stage: the stage's result (its recorder), its event, the
-- next stage's message (or task.completed after the last stage), and the deletion of the
-- handled message. Returns 'advanced', 'completed' or 'ignored'.
create or replace function darkroom.complete_stage(
  p_task_id uuid,
  p_stage text,
  p_msg_id bigint,
  p_result jsonb,
  p_source text
) returns text
language plpgsql volatile
security definer
set search_path = ''
as $$
declare
  v_stage darkroom.stages;
  v_next text := darkroom.next_stage(p_stage);
  v_task public.tasks;
  v_payload jsonb;
  v_ms bigint;
begin
  select s.* into v_stage from darkroom.stages s where s.name = p_stage;
  if not found then
    raise exception 'unknown stage: %', p_stage using errcode = '22023';
  end if;
  v_task := darkroom.lock_task_at_stage(p_task_id, p_stage, p_msg_id);
  if v_task.id is null then
    return 'ignored'; -- duplicate or late delivery: the message is gone, nothing changed
  end if;

  v_ms := darkroom.ms_between(coalesce(v_task.stage_started_at, v_task.updated_at), now());
  -- record_result is a darkroom.record_<name> identifier (the registry's check constraint).
  execute format('select %s($1, $2)', v_stage.record_result)
     into v_payload using v_task, coalesce(p_result, '{}'::jsonb);

  if v_next is not null then
    update public.tasks t
       set stage = v_next, stage_started_at = null, retry_at = null,
           error_code = null, error_message = null, error_stage = null, updated_at = now()
     where t.id = v_task.id returning * into v_task;
    perform darkroom.publish_event(v_task, v_stage.completed_event, p_source,
      v_payload || jsonb_build_object('durationMs', v_ms));
    perform pgmq.send(darkroom.stage_queue(v_next),
      jsonb_build_object('taskId', v_task.id, 'traceId', v_task.trace_id));
  else
    update public.tasks t
       set status = 'completed', stage = null, stage_started_at = null, retry_at = null,
           error_code = null, error_message = null, error_stage = null,
           completed_at = now(), updated_at = now()
     where t.id = v_task.id returning * into v_task;
    perform darkroom.publish_event(v_task, v_stage.completed_event, p_source,
      v_payload || jsonb_build_object('durationMs', v_ms));
    perform darkroom.publish_event(v_task, 'task.completed', p_source,
      jsonb_build_object('imageId', v_payload -> 'imageId', 'status', 'completed',
                         'durationMs', darkroom.ms_between(v_task.created_at, v_task.completed_at)));
  end if;

  -- MUST delete the message in the same transaction as the state change, or a crash replays
  -- the stage.
  perform pgmq.delete(v_stage.queue, p_msg_id);
  return case when v_next is null then 'completed' else 'advanced' end;
end
$$;

-- complete_stage for several messages of one stage in ONE transaction (a worker's group commit:
-- the successes that finished while its previous commit was in flight). Each item is
-- {taskId, msgId, result}; each outcome is complete_stage's, all of them commit or none (the
-- worker then commits them one by one). Returns one row per item, in the items' order.
create or replace function darkroom.complete_stages(
  p_stage text,
  p_items jsonb,
  p_source text
) returns table (msg_id bigint, outcome text)
language plpgsql volatile
security definer
set search_path = ''
as $$
declare
  v_item record;
begin
  -- GUARD: not an array of items: name the problem (jsonb_array_elements's own error does not).
  if jsonb_typeof(p_items) is distinct from 'array' then
    raise exception 'complete_stages: p_items must be a JSON array' using errcode = '22023';
  end if;
  for v_item in
    select (e.item ->> 'taskId')::uuid as task_id, (e.item ->> 'msgId')::bigint as msg_id,
           e.item -> 'result' as result
      from jsonb_array_elements(p_items) with ordinality as e(item, ord)
     order by e.ord
  loop
    msg_id := v_item.msg_id;
    outcome := darkroom.complete_stage(v_item.task_id, p_stage, v_item.msg_id, v_item.result,
                                       p_source);
    return next;
  end loop;
end
$$;

-- Ends a task as failed at a stage: error recorded, task.failed published, message archived.
create or replace function darkroom.fail_stage(
  p_task_id uuid,
  p_stage text,
  p_msg_id bigint,
  p_code text,
  p_message text,
  p_source text
) returns text
language plpgsql volatile
security definer
set search_path = ''
as $$
declare
  v_task public.tasks;
begin
  v_task := darkroom.lock_task_at_stage(p_task_id, p_stage, p_msg_id);
  if v_task.id is null then
    return 'ignored'; -- duplicate or late delivery: the message is gone, nothing changed
  end if;

  update public.tasks t
     set status = 'failed', error_code = p_code, error_message = p_message, error_stage = p_stage,
         stage_started_at = null, retry_at = null, updated_at = now()
   where t.id = v_task.id returning * into v_task;
  perform darkroom.publish_event(v_task, 'task.failed', p_source,
    jsonb_build_object('stage', p_stage, 'code', p_code, 'message', p_message,
                       'attempts', darkroom.attempts_at(v_task, p_stage)));
  -- Archived, not deleted: the failed message stays inspectable in pgmq.a_<queue>.
  perform pgmq.archive(darkroom.stage_queue(p_stage), p_msg_id);
  return 'failed';
end
$$;

-- Schedules another try of a stage after a transient error: the message becomes visible again
-- after p_delay_seconds; task.retry_scheduled is published.
create or replace function darkroom.schedule_retry(
  p_task_id uuid,
  p_stage text,
  p_msg_id bigint,
  p_delay_seconds integer,
  p_code text,
  p_message text,
  p_source text
) returns text
language plpgsql volatile
security definer
set search_path = ''
as $$
declare
  v_task public.tasks;
begin
  v_task := darkroom.lock_task_at_stage(p_task_id, p_stage, p_msg_id);
  if v_task.id is null then
    return 'ignored'; -- duplicate or late delivery: the message is gone, nothing changed
  end if;

  -- The error stays visible on the task until the retry's outcome: GET /tasks/:id explains the
  -- wait (error and nextAttemptAt) while the status is still processing.
  update public.tasks t
     set stage_started_at = null, error_code = p_code, error_message = p_message,
         error_stage = p_stage,
         retry_at = now() + make_interval(secs => greatest(p_delay_seconds, 0)), updated_at = now()
   where t.id = v_task.id returning * into v_task;
  perform darkroom.publish_event(v_task, 'task.retry_scheduled', p_source,
    jsonb_build_object('stage', p_stage, 'code', p_code, 'message', p_message,
                       'delaySeconds', p_delay_seconds,
                       'attempt', darkroom.attempts_at(v_task, p_stage)));
  perform pgmq.set_vt(darkroom.stage_queue(p_stage), p_msg_id, greatest(p_delay_seconds, 0));
  return 'retry_scheduled';
end
$$;
