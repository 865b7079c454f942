-- Row level security: a user sees only their own rows, whichever door they use (SQL through
-- PostgREST, the api function, the SSE stream, Realtime postgres_changes). Writes go only
-- through the SQL functions of the previous migration; clients get no insert/update/delete.
--
-- Tasks created with the bare anon key belong to nobody (owner is null). They can be read by
-- naming their id, never listed: the api sets `darkroom.task_id` to the id in the URL for the
-- one transaction that reads it, and the policies below admit an ownerless row only when its id
-- is the one named.

-- The task id the current request names (GET /tasks/:id), or null.
create or replace function public.requested_task_id() returns uuid
language sql stable
set search_path = ''
as $$
  select nullif(current_setting('darkroom.task_id', true), '')::uuid
$$;
grant execute on function public.requested_task_id() to anon, authenticated, service_role;

grant usage on schema public to anon, authenticated, service_role;

-- Sequences are advanced by the SQL functions (security definer), never by clients: Supabase's
-- default privileges would let anon and authenticated setval() events_seq_seq and rewind the
-- event cursor. Take them back, here and for every sequence or function made later by the
-- role that runs the migrations (each migration grants what clients may call, by name).
revoke all on all sequences in schema public from public, anon, authenticated;
alter default privileges in schema public revoke all on sequences from public, anon, authenticated;
alter default privileges in schema public revoke all on functions from public, anon, authenticated;

alter table public.tasks enable row level security;
alter table public.images enable row level security;
alter table public.events enable row level security;

revoke all on public.tasks, public.images, public.events from anon, authenticated;
grant select on public.tasks, public.images, public.events to anon, authenticated;
grant all on public.tasks, public.images, public.events to service_role;

create policy tasks_select_own on public.tasks
  for select to authenticated
  using (owner = (select auth.uid()));
create policy tasks_select_named_ownerless on public.tasks
  for select to anon, authenticated
  using (owner is null and id = (select public.requested_task_id()));

create policy images_select_own on public.images
  for select to authenticated
  using (owner = (select auth.uid()));
create policy images_select_named_ownerless on public.images
  for select to anon, authenticated
  using (owner is null and task_id = (select public.requested_task_id()));

create policy events_select_own on public.events
  for select to authenticated
  using (owner = (select auth.uid()));
create policy events_select_named_ownerless on public.events
  for select to anon, authenticated
  using (owner is null and task_id = (select public.requested_task_id()));

-- Realtime: postgres_changes on tasks and events (RLS applies to what each subscriber gets).
do $$
begin
  if exists (select 1 from pg_publication where pubname = 'supabase_realtime') then
    alter publication supabase_realtime add table public.tasks, public.events;
  end if;
end
$$;
