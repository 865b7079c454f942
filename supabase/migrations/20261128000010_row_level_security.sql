-- Row level security: a user sees only their own rows, whichever door they use (the api
-- function, the SSE stream, Realtime). Writes go only through the SQL functions; clients get no
-- insert/update/delete (20261128000009).
--
-- Tasks created with the bare anon key belong to nobody (owner is null). They can be read by
-- naming their id, never listed: the api sets `darkroom.task_id` to the id in the URL for the
-- one transaction that reads it, and the policies below admit an ownerless row only when its id
-- is the one named.

alter table public.tasks enable row level security;
alter table public.images enable row level security;
alter table public.events enable row level security;
alter table public.image_tags enable row level security;
alter table public.deliveries enable row level security;
alter table darkroom.rate_limit_buckets enable row level security;

create policy tasks_select_own on public.tasks
  for select to authenticated
  using (owner = (select auth.uid()));
create policy tasks_select_named_ownerless on public.tasks
  for select to anon, authenticated
  using (owner is null and id = (select darkroom.requested_task_id()));

create policy images_select_own on public.images
  for select to authenticated
  using (owner = (select auth.uid()));
create policy images_select_named_ownerless on public.images
  for select to anon, authenticated
  using (owner is null and task_id = (select darkroom.requested_task_id()));

create policy events_select_own on public.events
  for select to authenticated
  using (owner = (select auth.uid()));
create policy events_select_named_ownerless on public.events
  for select to anon, authenticated
  using (owner is null and task_id = (select darkroom.requested_task_id()));

create policy image_tags_select_own on public.image_tags
  for select to authenticated
  using (owner = (select auth.uid()));
create policy image_tags_select_named_ownerless on public.image_tags
  for select to anon, authenticated
  using (owner is null and task_id = (select darkroom.requested_task_id()));

create policy deliveries_select_own on public.deliveries
  for select to authenticated
  using (owner = (select auth.uid()));
create policy deliveries_select_named_ownerless on public.deliveries
  for select to anon, authenticated
  using (owner is null and task_id = (select darkroom.requested_task_id()));

-- Realtime: postgres_changes on tasks and events (RLS applies to what each subscriber gets).
do $$
begin
  if exists (select 1 from pg_publication where pubname = 'supabase_realtime') then
    alter publication supabase_realtime add table public.tasks, public.events;
  end if;
end
$$;
