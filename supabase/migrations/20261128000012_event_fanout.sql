-- The event fan-out: every row written to public.events reaches, durably, each side-effect
-- subscriber that takes its type. A subscriber is a row of darkroom.subscriptions (its pgmq
-- queue, the edge function that drains it, the event types it takes); the trigger below sends
-- `{eventId, taskId, traceId, eventType}` to the queue of every enabled, matching subscription
-- IN THE SAME TRANSACTION as the insert, so a subscriber that is down misses nothing and an
-- event rolled back is never announced. Database webhooks (pg_net) never retry and Realtime
-- never replays: neither is a path a subscriber depends on.
--
-- Adding a subscriber: a row here (its queue is created by the insert) and its event types in
-- darkroom.subscription_event_types (or every_event), a worker function, and
-- `select darkroom.replay_events('<name>', 0)` to back-fill the log it missed.

create table darkroom.subscriptions (
  name text primary key,
  queue text not null,
  worker_function text not null,
  -- Takes every event type, present and future (analytics); otherwise the types listed in
  -- darkroom.subscription_event_types.
  every_event boolean not null default false,
  -- A disabled subscription receives nothing and no scheduler drives its worker.
  enabled boolean not null default true,
  description text,
  constraint subscriptions_queue_key unique (queue),
  constraint subscriptions_worker_function_key unique (worker_function),
  constraint name_is_identifier check (name ~ '^[a-z][a-z_]*$'),
  constraint queue_is_identifier check (queue ~ '^[a-z][a-z0-9_]{0,40}$')
);
comment on table darkroom.subscriptions is
  'Side-effect subscribers of public.events: one pgmq queue and one worker function each';

create table darkroom.subscription_event_types (
  subscription text not null references darkroom.subscriptions (name) on delete cascade,
  event_type text not null references darkroom.event_types (name),
  constraint subscription_event_types_pkey primary key (subscription, event_type)
);
create index subscription_event_types_event_type_idx
  on darkroom.subscription_event_types (event_type);

-- A subscription's queue exists as soon as its row does (idempotent: pgmq.create is), and
-- service_role may drain it as it drains the stage queues.
create or replace function darkroom._create_subscription_queue() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  -- GUARD: a stage's queue carries {taskId, traceId} messages: it can never be a subscriber's.
  if exists (select 1 from darkroom.stages s where s.queue = NEW.queue) then
    raise exception 'queue % belongs to a stage', NEW.queue using errcode = '23505';
  end if;
  perform pgmq.create(NEW.queue);
  perform darkroom.grant_queue_to_service_role(NEW.queue);
  return NEW;
end
$$;
revoke all on function darkroom._create_subscription_queue() from public;

create trigger create_subscription_queue
  before insert or update of queue on darkroom.subscriptions
  for each row execute function darkroom._create_subscription_queue();

-- The message a subscriber receives for one event: ids only; the event row is the state.
create or replace function darkroom.subscriber_message(p_event public.events) returns jsonb
language sql immutable
set search_path = ''
as $$
  select jsonb_build_object('eventId', p_event.id, 'taskId', p_event.task_id,
                            'traceId', p_event.trace_id, 'eventType', p_event.event_type)
$$;

-- The queues of the enabled subscriptions that take `p_event_type`.
create or replace function darkroom.subscriber_queues(p_event_type text) returns setof text
language plpgsql stable
set search_path = ''
as $$
begin
  -- plpgsql, not sql: its plan is kept for the session (the fan-out asks on every event).
  return query
    select s.queue from darkroom.subscriptions s
     where s.enabled
       and (s.every_event or exists (
         select 1 from darkroom.subscription_event_types t
          where t.subscription = s.name and t.event_type = p_event_type))
     order by s.name;
end
$$;

-- security definer: the insert may come from any role's transition (create_task runs for
-- clients); the queues are the migration owner's.
create or replace function darkroom._fan_out_event() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_queue text;
  v_message constant jsonb := darkroom.subscriber_message(NEW);
begin
  -- MUST send in the inserting transaction: the event and its announcements commit together
  -- or not at all.
  for v_queue in select q from darkroom.subscriber_queues(NEW.event_type) q loop
    perform pgmq.send(v_queue, v_message);
  end loop;
  return null; -- AFTER trigger: the result is ignored
end
$$;
revoke all on function darkroom._fan_out_event() from public;

drop trigger if exists fan_out_event on public.events;
create trigger fan_out_event
  after insert on public.events
  for each row execute function darkroom._fan_out_event();

-- Enqueues the events with p_from_seq <= seq <= p_to_seq (null: to the end of the log) that
-- `p_subscriber` takes, oldest first, on its queue: a back-fill (p_from_seq = 0) or a replay.
-- Works on a disabled subscription too (its queue fills for when it is enabled). Returns how
-- many messages were sent. A replay is a request to handle the range again: the subscriber's
-- receipts in it go first (darkroom.event_receipts, 20261128000013), or the idempotency guard
-- would drop every replayed message unseen.
create or replace function darkroom.replay_events(
  p_subscriber text,
  p_from_seq bigint,
  p_to_seq bigint default null
) returns integer
language plpgsql volatile
security definer
set search_path = ''
as $$
declare
  v_sub darkroom.subscriptions;
  v_sent integer;
begin
  select s.* into v_sub from darkroom.subscriptions s where s.name = p_subscriber;
  if not found then
    raise exception 'unknown subscriber: %', p_subscriber using errcode = '22023';
  end if;
  if p_from_seq is null or p_from_seq < 0 or p_to_seq < p_from_seq then
    raise exception 'invalid range: % to %', p_from_seq, p_to_seq using errcode = '22023';
  end if;
  delete from darkroom.event_receipts r
   using public.events e
   where r.subscription = p_subscriber and r.event_id = e.id
     and e.seq >= p_from_seq and (p_to_seq is null or e.seq <= p_to_seq);
  select count(*)::integer into v_sent
    from pgmq.send_batch(v_sub.queue, array(
      select darkroom.subscriber_message(e) from public.events e
       where e.seq >= p_from_seq and (p_to_seq is null or e.seq <= p_to_seq)
         and (v_sub.every_event or exists (
           select 1 from darkroom.subscription_event_types t
            where t.subscription = v_sub.name and t.event_type = e.event_type))
       order by e.seq));
  return v_sent;
end
$$;
revoke all on function darkroom.replay_events(text, bigint, bigint) from public, anon, authenticated;

-- The subscribers. Their workers arrive with later migrations, which enable them; until then a
-- subscription stays disabled, so nothing piles up on a queue no one drains.
insert into darkroom.subscriptions (name, queue, worker_function, every_event, enabled, description)
values
  ('notification', 'evt_notification', 'notification-worker', false, false,
   'Signed webhook (Standard Webhooks) to the task''s callbackUrl'),
  ('analytics', 'evt_analytics', 'analytics-worker', true, false,
   'Stage timings, counts, AI usage'),
  ('tag_indexer', 'evt_tag_indexer', 'tag-indexer-worker', false, false,
   'The tag -> image index (public.image_tags)');
insert into darkroom.subscription_event_types (subscription, event_type) values
  ('notification', 'task.completed'), ('notification', 'task.failed'),
  ('notification', 'task.cancelled'),
  ('tag_indexer', 'image.analyzed');

-- Every queue a worker function drains: the stages' (in pipeline order), then the enabled
-- subscribers'. pg_cron's invoke_workers, housekeep and the local platform read it; `kind`
-- tells the platform which chain a worker belongs to.
create or replace view darkroom.worker_queues as
  select s.worker_function, s.queue, s.position, 'stage'::text as kind
    from darkroom.stages s
  union all
  select sub.worker_function, sub.queue,
         (1000 + row_number() over (order by sub.name))::integer, 'subscriber'::text
    from darkroom.subscriptions sub
   where sub.enabled;

grant select on darkroom.subscriptions, darkroom.subscription_event_types to service_role;
grant execute on function darkroom.replay_events(text, bigint, bigint),
  darkroom.subscriber_queues(text)
  to service_role;
revoke all on function darkroom.subscriber_message(public.events),
  darkroom.subscriber_queues(text) from public, anon, authenticated;
