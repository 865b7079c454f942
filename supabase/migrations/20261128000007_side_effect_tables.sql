-- Tables the side-effect consumers fill (the event fan-out): image_tags, the tag -> image index
-- the tag-indexer keeps, and deliveries, one row per webhook the notifier sends to a task's
-- callbackUrl. Both are client-visible, so both carry their owner and row level security,
-- written as for tasks, images and events.

create table public.image_tags (
  tag text not null,
  image_id uuid not null references public.images (id) on delete cascade,
  task_id uuid not null references public.tasks (id) on delete cascade,
  owner uuid,
  created_at timestamptz not null default now(),
  constraint image_tags_pkey primary key (tag, image_id),
  constraint tag_is_normalised check (tag = lower(btrim(tag)) and length(tag) between 1 and 64)
);
create index image_tags_owner_tag_idx on public.image_tags (owner, tag);
create index image_tags_task_id_idx on public.image_tags (task_id);

create table public.deliveries (
  id uuid primary key default gen_random_uuid(),
  event_id uuid not null references public.events (id) on delete cascade,
  task_id uuid references public.tasks (id) on delete cascade,
  owner uuid,
  url text not null,
  status text not null default 'pending',
  attempts integer not null default 0,
  response_status integer,
  last_error text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  delivered_at timestamptz,
  constraint deliveries_event_id_url_key unique (event_id, url),
  constraint status_is_known check (status in ('pending', 'delivered', 'failed')),
  constraint attempts_is_nonnegative check (attempts >= 0)
);
create index deliveries_task_id_idx on public.deliveries (task_id);
create index deliveries_owner_idx on public.deliveries (owner);

alter table public.image_tags enable row level security;
alter table public.deliveries enable row level security;
revoke all on public.image_tags, public.deliveries from anon, authenticated;
grant select on public.image_tags, public.deliveries to anon, authenticated;
grant all on public.image_tags, public.deliveries to service_role;

create policy image_tags_select_own on public.image_tags
  for select to authenticated
  using (owner = (select auth.uid()));
create policy image_tags_select_named_ownerless on public.image_tags
  for select to anon, authenticated
  using (owner is null and task_id = (select public.requested_task_id()));

create policy deliveries_select_own on public.deliveries
  for select to authenticated
  using (owner = (select auth.uid()));
create policy deliveries_select_named_ownerless on public.deliveries
  for select to anon, authenticated
  using (owner is null and task_id = (select public.requested_task_id()));
