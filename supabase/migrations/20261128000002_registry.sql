-- The registry: the one place the pipeline's shape is written. The transitions, the pg_cron
-- schedules, the local platform's wake chain, /stats and the TypeScript stage table
-- (shared/stages.ts, checked against these rows by a test) all read it.
--
-- Adding a stage: a row in darkroom.stages (and its completion event in darkroom.event_types),
-- a result recorder (darkroom.record_<stage>), a worker module, an entry in shared/stages.ts.

-- Every event type the log may hold; events.event_type references it.
create table darkroom.event_types (
  name text primary key,
  constraint name_is_dotted check (name ~ '^[a-z]+\.[a-z_]+$')
);
insert into darkroom.event_types (name) values
  ('task.created'), ('image.downloaded'), ('image.metadata_extracted'), ('image.analyzed'),
  ('task.completed'), ('task.failed'), ('task.retry_scheduled'), ('task.cancelled');

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
insert into darkroom.stages (name, position, queue, worker_function, completed_event, record_result)
values
  ('download', 1, 'image_download', 'download-worker', 'image.downloaded', 'darkroom.record_download'),
  ('metadata', 2, 'metadata_processing', 'metadata-worker', 'image.metadata_extracted',
   'darkroom.record_metadata'),
  ('ai', 3, 'ai_processing', 'ai-worker', 'image.analyzed', 'darkroom.record_analysis');

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

-- One pgmq queue per stage.
select pgmq.create(s.queue) from darkroom.stages s order by s.position;
