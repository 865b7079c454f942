-- Tables: tasks (the state of every task), images (what the stages learned), events (the
-- append-only log of milestones, with a monotonic sequence for cursors).

create table public.tasks (
  id uuid primary key default gen_random_uuid(),
  trace_id uuid not null default gen_random_uuid(),
  -- auth.uid() of the creator; null for tasks created with the bare anon key.
  owner uuid,
  status text not null default 'queued',
  stage text default 'download',
  image_url text not null,
  callback_url text,
  options jsonb not null default '{}'::jsonb,
  idempotency_key text,
  download_attempts integer not null default 0,
  metadata_attempts integer not null default 0,
  ai_attempts integer not null default 0,
  error_code text,
  error_message text,
  error_stage text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  completed_at timestamptz,
  constraint status_is_known
    check (status in ('queued', 'processing', 'completed', 'failed', 'cancelled')),
  constraint stage_is_known check (stage in ('download', 'metadata', 'ai')),
  constraint attempts_are_nonnegative
    check (download_attempts >= 0 and metadata_attempts >= 0 and ai_attempts >= 0),
  constraint image_url_is_not_empty check (length(image_url) between 1 and 2048),
  constraint idempotency_key_is_short check (length(idempotency_key) between 1 and 255),
  constraint error_is_complete
    check ((error_code is null) = (error_message is null))
);

-- Idempotency-Key is scoped to its owner. Only service_role may use one for an ownerless task
-- (create_task refuses a key from the shared anon key), so the nil owner is never shared.
create unique index tasks_owner_idempotency_key_key
  on public.tasks (coalesce(owner, '00000000-0000-0000-0000-000000000000'::uuid), idempotency_key)
  where idempotency_key is not null;
create index tasks_owner_created_at_idx on public.tasks (owner, created_at desc);
create index tasks_status_idx on public.tasks (status);

create table public.images (
  id uuid primary key default gen_random_uuid(),
  task_id uuid not null references public.tasks (id) on delete cascade,
  owner uuid,
  sha256 text not null,
  content_type text not null,
  byte_size bigint not null,
  storage_path text not null,
  width integer,
  height integer,
  format text,
  -- {make, model, takenAt, orientation, gps, exif, partial}
  metadata jsonb,
  -- {provider, model, caption, tags, safety, usage}
  analysis jsonb,
  -- The embedded EXIF preview, stored as a blob: {sha256, contentType, byteSize, width, height,
  -- storagePath}; null when the file has none.
  thumbnail jsonb,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint images_task_id_key unique (task_id),
  constraint sha256_is_hex check (sha256 ~ '^[0-9a-f]{64}$'),
  constraint byte_size_is_positive check (byte_size > 0),
  constraint dimensions_are_positive check (width > 0 and height > 0)
);
create index images_sha256_idx on public.images (sha256);
create index images_owner_idx on public.images (owner);

create table public.events (
  -- Monotonic sequence: the cursor of GET /events/stream (Last-Event-ID).
  seq bigint generated always as identity primary key,
  id uuid not null default gen_random_uuid(),
  event_type text not null,
  task_id uuid references public.tasks (id) on delete cascade,
  trace_id uuid not null,
  owner uuid,
  source text not null,
  payload jsonb not null default '{}'::jsonb,
  created_at timestamptz not null default clock_timestamp(),
  -- The writing transaction: a reader streams only rows older than every transaction still in
  -- flight (pg_snapshot_xmin), so a row with a lower seq can never appear behind its cursor.
  tx_id xid8 not null default pg_current_xact_id(),
  constraint events_id_key unique (id),
  constraint event_type_is_known check (event_type in (
    'task.created', 'image.downloaded', 'image.metadata_extracted', 'image.analyzed',
    'task.completed', 'task.failed', 'task.retry_scheduled', 'task.cancelled'
  ))
);
create index events_task_id_seq_idx on public.events (task_id, seq);
create index events_owner_seq_idx on public.events (owner, seq);
create index events_tx_id_seq_idx on public.events (tx_id, seq);

-- The stage queues: a message carries ids only ({taskId, traceId}); state lives in tables.
select pgmq.create('image_download');
select pgmq.create('metadata_processing');
select pgmq.create('ai_processing');
