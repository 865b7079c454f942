-- Releasing a held message without spending a try: "not now, come back in N s, because X".
-- A stage that cannot start its real work yet (the provider's rate limit is spent, the daily AI
-- budget is reached, another task is already analysing the same image) gives its message back
-- with a visibility timeout. That is not a try: the try begin_stage counted is taken back, no
-- task.retry_scheduled is published, and the task shows `queued` with the reason it waits.

alter table public.tasks
  add column if not exists waiting text,
  add column if not exists waiting_until timestamptz;
do $$
begin
  if not exists (select 1 from pg_constraint where conname = 'waiting_is_known'
                  and conrelid = 'public.tasks'::regclass) then
    alter table public.tasks add constraint waiting_is_known
      check (waiting in ('budget', 'rate_limit', 'reuse'));
  end if;
end
$$;

-- Told to the owner once per wait for a budget (not once per release): payload in
-- shared/events.ts.
insert into darkroom.event_types (name) values ('task.throttled') on conflict do nothing;

-- Gives a held message back for p_delay_seconds without counting a try. Returns 'released', or
-- 'ignored' for a duplicate or late delivery (the message is deleted, nothing changes).
create or replace function darkroom.release_stage(
  p_stage text,
  p_msg_id bigint,
  p_task_id uuid,
  p_delay_seconds integer,
  p_reason text,
  p_source text default 'coordinator',
  p_detail jsonb default '{}'::jsonb
) returns text
language plpgsql volatile
security definer
set search_path = ''
as $$
declare
  v_task public.tasks;
  v_was_waiting text;
  v_delay constant integer := least(greatest(coalesce(p_delay_seconds, 1), 1), 3600);
begin
  v_task := darkroom.lock_task_at_stage(p_task_id, p_stage, p_msg_id);
  if v_task.id is null then
    return 'ignored'; -- duplicate or late delivery: the message is gone, nothing changed
  end if;
  v_was_waiting := v_task.waiting;

  -- MUST take back the try begin_stage counted: its guard (tries >= MAX_ATTEMPTS fails the
  -- task) would otherwise fail a task that was only ever told to wait.
  update public.tasks t
     set status = 'queued',
         attempts = t.attempts || jsonb_build_object(p_stage,
                      greatest(darkroom.attempts_at(t, p_stage) - 1, 0)),
         stage_started_at = null, waiting = p_reason,
         waiting_until = now() + make_interval(secs => v_delay), updated_at = now()
   where t.id = v_task.id returning * into v_task;

  -- Once per wait, not per release: a wait for the budget can last until midnight UTC.
  if p_reason = 'budget' and v_was_waiting is distinct from 'budget' then
    perform darkroom.publish_event(v_task, 'task.throttled', p_source,
      coalesce(p_detail, '{}'::jsonb) || jsonb_build_object('stage', p_stage, 'reason', p_reason,
        'delaySeconds', v_delay));
  end if;
  perform pgmq.set_vt(darkroom.stage_queue(p_stage), p_msg_id, v_delay);
  return 'released';
end
$$;

revoke all on function darkroom.release_stage(text, bigint, uuid, integer, text, text, jsonb)
  from public, anon, authenticated;
grant execute on function darkroom.release_stage(text, bigint, uuid, integer, text, text, jsonb)
  to service_role;
