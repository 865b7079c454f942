-- The registry: the one place the pipeline's shape is written. The transitions, the pg_cron
-- schedules, the local platform's wake chain, /stats and the TypeScript stage table
-- (shared/stages.ts, checked against these rows by a test) all read it.
--
-- Adding a stage: `select darkroom.add_stage(...)` in a migration, a worker module, and its
-- entry in shared/stages.ts (README "Adding a stage" lists the wiring files).

-- Every event type the log may hold; events.event_type references it.
create table darkroom.event_types (
  name text primary key,
  constraint name_is_dotted check (name ~ '^[a-z]+\.[a-z_]+$')
);
-- The task lifecycle's events; each stage adds its completion event (darkroom.add_stage).
insert into darkroom.event_types (name) values
  ('task.created'), ('task.completed'), ('task.failed'), ('task.retry_scheduled'),
  ('task.cancelled');

-- The stages of the main flow, in `position` order. Each has its pgmq queue, the edge function
-- that drains it, the event its success publishes, and the SQL function that records its result
-- (called by darkroom.complete_stage; it returns that event's payload).
create table darkroom.stages (
  name text primary key,
  position integer not null,
  queue text not null,
  worker_function text not null,
  completed_event text not null references darkroom.event_types (name),
  record_result text not null,
  constraint stages_position_key unique (position),
  constraint stages_queue_key unique (queue),
  constraint stages_worker_function_key unique (worker_function),
  constraint name_is_identifier check (name ~ '^[a-z][a-z_]*$'),
  constraint queue_is_identifier check (queue ~ '^[a-z][a-z0-9_]{0,40}$'),
  constraint record_result_is_darkroom check (record_result ~ '^darkroom\.record_[a-z_]+$')
);

-- Grants one queue to service_role: messages read, sent, hidden, deleted and archived; the
-- message id sequence read by metrics(). Idempotent. (The workers connect as the queues' owner
-- on Supabase; service_role may also run one: a server holding the service key, the tests.)
create or replace function darkroom.grant_queue_to_service_role(p_queue text) returns void
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

-- Adds a stage: its completion event type, its row (at the end of the flow, or just before
-- p_before), its pgmq queue and that queue's grant. The one SQL call a new stage needs; its
-- result goes to darkroom.record_generic unless it names a recorder of its own.
create or replace function darkroom.add_stage(
  p_name text,
  p_queue text,
  p_worker_function text,
  p_completed_event text,
  p_record_result text default 'darkroom.record_generic',
  p_before text default null
) returns void
language plpgsql volatile
set search_path = ''
as $$
declare
  v_position integer;
begin
  insert into darkroom.event_types (name) values (p_completed_event) on conflict do nothing;
  if p_before is null then
    select coalesce(max(s.position), 0) + 1 into v_position from darkroom.stages s;
  else
    select s.position into v_position from darkroom.stages s where s.name = p_before;
    if v_position is null then
      raise exception 'unknown stage: %', p_before using errcode = '22023';
    end if;
    -- Make room: positions are unique, so move the later stages one step, last first.
    update darkroom.stages s set position = s.position + 1000 where s.position >= v_position;
    update darkroom.stages s set position = s.position - 999 where s.position >= v_position + 1000;
  end if;
  insert into darkroom.stages (name, position, queue, worker_function, completed_event,
                               record_result)
  values (p_name, v_position, p_queue, p_worker_function, p_completed_event, p_record_result);
  perform pgmq.create(p_queue);
  perform darkroom.grant_queue_to_service_role(p_queue);
end
$$;
-- Every queue a worker function drains, with that function: what the schedules invoke and the
-- local platform drives. The event fan-out's subscriber queues join this view.
create view darkroom.worker_queues as
  select s.worker_function, s.queue, s.position from darkroom.stages s;

-- The stage after p_stage, or null after the last one.
create or replace function darkroom.next_stage(p_stage text) returns text
language sql stable
set search_path = ''
as $$
  select n.name from darkroom.stages s
    join darkroom.stages n on n.position > s.position
   where s.name = p_stage
   order by n.position
   limit 1
$$;

-- The first stage of the flow.
create or replace function darkroom.first_stage() returns text
language sql stable
set search_path = ''
as $$
  select s.name from darkroom.stages s order by s.position limit 1
$$;

-- The queue of a stage; raises for an unknown stage.
create or replace function darkroom.stage_queue(p_stage text) returns text
language plpgsql stable
set search_path = ''
as $$
declare
  v_queue text;
begin
  select s.queue into v_queue from darkroom.stages s where s.name = p_stage;
  if v_queue is null then
    raise exception 'unknown stage: %', p_stage using errcode = '22023';
  end if;
  return v_queue;
end
$$;

-- The stages of Darkroom's flow.
select darkroom.add_stage('download', 'image_download', 'download-worker', 'image.downloaded',
                          'darkroom.record_download');
select darkroom.add_stage('metadata', 'metadata_processing', 'metadata-worker',
                          'image.metadata_extracted', 'darkroom.record_metadata');
select darkroom.add_stage('ai', 'ai_processing', 'ai-worker', 'image.analyzed',
                          'darkroom.record_analysis');
