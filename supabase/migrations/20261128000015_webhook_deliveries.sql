-- Webhook deliveries: the notification-worker (subscription `notification`) POSTs task.completed,
-- task.failed and task.cancelled to the task's callbackUrl, signed per Standard Webhooks, and
-- records EVERY attempt as a row of public.deliveries (row level security: the task's owner).

-- One row per attempt, not per (event, url): the unique pair goes, an attempt number comes.
alter table public.deliveries drop constraint deliveries_event_id_url_key;
alter table public.deliveries rename column attempts to attempt;
alter table public.deliveries rename constraint attempts_is_nonnegative to attempt_is_nonnegative;
alter table public.deliveries alter column attempt set default 1;
alter table public.deliveries rename column last_error to error;
alter table public.deliveries
  add column event_type text,
  add column duration_ms integer,
  -- When the next try is due; null once delivered or given up.
  add column next_attempt_at timestamptz,
  add constraint duration_is_nonnegative check (duration_ms >= 0);
-- delivered: 2xx; retrying: failed, another try at next_attempt_at; failed: failed, no more tries.
alter table public.deliveries drop constraint status_is_known;
alter table public.deliveries add constraint status_is_known
  check (status in ('pending', 'delivered', 'retrying', 'failed'));
create index deliveries_event_id_idx on public.deliveries (event_id);
comment on table public.deliveries is
  'One row per webhook attempt to a task''s callbackUrl (notification-worker)';

-- Records one attempt of delivering p_event_id to p_url; task and owner come from the event.
create or replace function darkroom.record_delivery(
  p_event_id uuid,
  p_url text,
  p_attempt integer,
  p_status text,
  p_response_status integer,
  p_duration_ms integer,
  p_error text,
  p_next_attempt_at timestamptz
) returns uuid
language sql volatile
security definer
set search_path = ''
as $$
  insert into public.deliveries (event_id, task_id, owner, url, event_type, attempt, status,
                                 response_status, duration_ms, error, next_attempt_at,
                                 delivered_at)
  select e.id, e.task_id, e.owner, p_url, e.event_type, p_attempt, p_status, p_response_status,
         p_duration_ms, p_error, p_next_attempt_at,
         case when p_status = 'delivered' then now() end
    from public.events e where e.id = p_event_id
  returning id
$$;

-- Sends the event of a delivery to the notifier again (POST /deliveries/:id/redeliver, after the
-- api checked under the caller's RLS that the delivery is theirs). Returns the messages sent.
create or replace function darkroom.redeliver(p_delivery_id uuid) returns integer
language plpgsql volatile
security definer
set search_path = ''
as $$
declare
  v_seq bigint;
begin
  select e.seq into v_seq
    from public.deliveries d join public.events e on e.id = d.event_id
   where d.id = p_delivery_id;
  if v_seq is null then
    return 0;
  end if;
  return darkroom.replay_events('notification', v_seq, v_seq);
end
$$;

revoke all on function
  darkroom.record_delivery(uuid, text, integer, text, integer, integer, text, timestamptz),
  darkroom.redeliver(uuid)
  from public, anon, authenticated;
grant execute on function
  darkroom.record_delivery(uuid, text, integer, text, integer, integer, text, timestamptz),
  darkroom.redeliver(uuid)
  to service_role;

-- Its worker exists now. No back-fill: old events are not announced to callbacks after the fact.
update darkroom.subscriptions set enabled = true where name = 'notification';
