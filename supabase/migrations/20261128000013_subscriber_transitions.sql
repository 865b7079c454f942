-- The subscriber transitions: what a side-effect worker does with the messages of its queue,
-- the counterpart of the stages' begin/complete/fail/schedule_retry. They never touch a task:
-- a subscriber only reacts. Tries are pgmq's read_ct (a subscriber has no task attempts); the
-- outcome of each (subscriber, event) is a receipt, which makes a subscriber idempotent by
-- eventId: a duplicate message for an event already handled is deleted unseen.

create table darkroom.event_receipts (
  subscription text not null references darkroom.subscriptions (name) on delete cascade,
  event_id uuid not null references public.events (id) on delete cascade,
  status text not null,
  -- Tries the last message made (its read_ct).
  attempts integer not null,
  -- Why the last try failed, kept with the archived message's final failure.
  error text,
  updated_at timestamptz not null default now(),
  constraint event_receipts_pkey primary key (subscription, event_id),
  constraint status_is_known check (status in ('done', 'failed')),
  constraint attempts_is_positive check (attempts > 0)
);
create index event_receipts_event_id_idx on darkroom.event_receipts (event_id);

-- The INEvent of a row, as the api, Realtime and subscribers show it.
create or replace function darkroom.inevent(p_event public.events) returns jsonb
language sql immutable
set search_path = ''
as $$
  select jsonb_build_object(
    'eventId', p_event.id,
    'eventType', p_event.event_type,
    'traceId', p_event.trace_id,
    'timestamp', floor(extract(epoch from p_event.created_at) * 1000)::bigint,
    'source', p_event.source,
    'payload', p_event.payload
  ) || case when p_event.task_id is null then '{}'::jsonb
            else jsonb_build_object('taskId', p_event.task_id) end
$$;

-- The queue of a subscription; raises for an unknown one.
create or replace function darkroom.subscription_queue(p_subscriber text) returns text
language plpgsql stable
set search_path = ''
as $$
declare
  v_queue text;
begin
  select s.queue into v_queue from darkroom.subscriptions s where s.name = p_subscriber;
  if v_queue is null then
    raise exception 'unknown subscriber: %', p_subscriber using errcode = '22023';
  end if;
  return v_queue;
end
$$;

-- Records the outcome of (subscriber, event).
create or replace function darkroom._put_receipt(
  p_subscriber text,
  p_event_id uuid,
  p_status text,
  p_attempts integer,
  p_error text
) returns void
language sql volatile
set search_path = ''
as $$
  insert into darkroom.event_receipts as r (subscription, event_id, status, attempts, error)
  select p_subscriber, p_event_id, p_status, greatest(p_attempts, 1), p_error
   where exists (select 1 from public.events e where e.id = p_event_id)
  on conflict (subscription, event_id) do update
    set status = excluded.status, attempts = excluded.attempts, error = excluded.error,
        updated_at = now()
$$;

-- Claims a batch read from a subscriber's queue: for each message, whether to proceed and the
-- INEvent it announces.
create or replace function darkroom.claim_events(
  p_subscriber text,
  p_msg_ids bigint[],
  p_event_ids uuid[],
  p_read_cts integer[],
  p_max_attempts integer
) returns table (msg_id bigint, event_id uuid, proceed boolean, attempt integer, event jsonb)
language plpgsql volatile
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
  v_queue constant text := darkroom.subscription_queue(p_subscriber);
  v_event public.events;
begin
  for i in 1 .. coalesce(array_length(p_msg_ids, 1), 0) loop
    select e.* into v_event from public.events e where e.id = p_event_ids[i];

    -- GUARD: the event is gone (its task was deleted) or this subscriber handled it already (a
    -- duplicate message): delete the message, do nothing.
    if not found or exists (
      select 1 from darkroom.event_receipts r
       where r.subscription = p_subscriber and r.event_id = p_event_ids[i] and r.status = 'done'
    ) then
      perform pgmq.delete(v_queue, p_msg_ids[i]);
      return query select p_msg_ids[i], p_event_ids[i], false, 0, null::jsonb;
      continue;
    end if;

    -- GUARD: every try the policy allows was begun and this delivery is another (a worker died
    -- without recording an outcome): give up rather than loop on a message that kills.
    if p_read_cts[i] > p_max_attempts then
      perform darkroom._put_receipt(p_subscriber, v_event.id, 'failed', p_read_cts[i],
        format('Gave up after %s tries without an outcome', p_read_cts[i] - 1));
      perform pgmq.archive(v_queue, p_msg_ids[i]);
      return query select p_msg_ids[i], p_event_ids[i], false, 0, null::jsonb;
      continue;
    end if;

    return query select p_msg_ids[i], v_event.id, true, p_read_cts[i], darkroom.inevent(v_event);
  end loop;
end
$$;

-- The subscriber handled the event: receipt 'done', message deleted, in one transaction.
create or replace function darkroom.ack_event(
  p_subscriber text,
  p_msg_id bigint,
  p_event_id uuid,
  p_attempts integer
) returns text
language plpgsql volatile
security definer
set search_path = ''
as $$
begin
  perform darkroom._put_receipt(p_subscriber, p_event_id, 'done', p_attempts, null);
  perform pgmq.delete(darkroom.subscription_queue(p_subscriber), p_msg_id);
  return 'done';
end
$$;

-- ack_event for several messages of one subscriber in ONE transaction (a worker's group
-- commit). Each item is {msgId, eventId, attempts}; all of them commit or none (the worker then
-- acks them one by one).
create or replace function darkroom.ack_events(p_subscriber text, p_items jsonb) returns integer
language plpgsql volatile
security definer
set search_path = ''
as $$
declare
  v_queue constant text := darkroom.subscription_queue(p_subscriber);
  v_n bigint;
begin
  -- GUARD: not an array of items: name the problem (jsonb_to_recordset's own error does not).
  if jsonb_typeof(p_items) is distinct from 'array' then
    raise exception 'ack_events: p_items must be a JSON array' using errcode = '22023';
  end if;
  perform darkroom._put_receipt(p_subscriber, i."eventId", 'done', i.attempts, null)
     from jsonb_to_recordset(p_items) as i("msgId" bigint, "eventId" uuid, attempts integer);
  select count(*) into v_n
    from pgmq.delete(v_queue, array(
      select i."msgId" from jsonb_to_recordset(p_items) as i("msgId" bigint))) d;
  return v_n::integer;
end
$$;

-- Another try after p_delay_seconds: the message becomes visible again then.
create or replace function darkroom.retry_event(
  p_subscriber text,
  p_msg_id bigint,
  p_delay_seconds integer
) returns text
language plpgsql volatile
security definer
set search_path = ''
as $$
begin
  perform pgmq.set_vt(darkroom.subscription_queue(p_subscriber), p_msg_id,
                      greatest(p_delay_seconds, 0));
  return 'retried';
end
$$;

-- The final failure: receipt 'failed' with the error, message archived (inspectable in
-- pgmq.a_<queue>; a replay sends the event again).
create or replace function darkroom.fail_event(
  p_subscriber text,
  p_msg_id bigint,
  p_event_id uuid,
  p_attempts integer,
  p_error text
) returns text
language plpgsql volatile
security definer
set search_path = ''
as $$
begin
  perform darkroom._put_receipt(p_subscriber, p_event_id, 'failed', p_attempts, p_error);
  perform pgmq.archive(darkroom.subscription_queue(p_subscriber), p_msg_id);
  return 'failed';
end
$$;

revoke all on function darkroom.inevent(public.events), darkroom.subscription_queue(text),
  darkroom._put_receipt(text, uuid, text, integer, text),
  darkroom.claim_events(text, bigint[], uuid[], integer[], integer),
  darkroom.ack_event(text, bigint, uuid, integer), darkroom.ack_events(text, jsonb),
  darkroom.retry_event(text, bigint, integer), darkroom.fail_event(text, bigint, uuid, integer, text)
  from public, anon, authenticated;
grant execute on function darkroom.claim_events(text, bigint[], uuid[], integer[], integer),
  darkroom.ack_event(text, bigint, uuid, integer), darkroom.ack_events(text, jsonb),
  darkroom.retry_event(text, bigint, integer),
  darkroom.fail_event(text, bigint, uuid, integer, text), darkroom.subscription_queue(text)
  to service_role;
grant select on darkroom.event_receipts to service_role;
