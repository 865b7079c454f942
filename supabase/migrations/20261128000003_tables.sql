-- Tables. Client-visible ones live in public under row level security (20261128000010):
-- tasks (the state of every task), images (what the stages learned), events (the append-only
-- log of milestones), image_tags and deliveries (filled by the event fan-out's consumers).
-- Internal ones live in darkroom.

create table public.tasks (
  id uuid primary key default gen_random_uuid(),
  trace_id uuid not null default gen_random_uuid(),
  -- auth.uid() of the creator; null for tasks created with the bare anon key.
  owner uuid,
  status text not null default 'queued',
  -- The stage the task is at (null once it ended well); a row of darkroom.stages.
  stage text references darkroom.stages (name),
  image_url text not null,
  callback_url text,
  options jsonb not null default '{}'::jsonb,
  idempotency_key text,
  -- Tries made at each stage, {"download": 1, ...}: the one counter the retry policy reads and
  -- the task resource shows. A manual retry gives the failed stage a fresh budget.
  attempts jsonb not null default '{}'::jsonb,
  error_code text,
  error_message text,
  error_stage text references darkroom.stages (name),
  -- When the current stage's work began (queue wait excluded); its event's durationMs.
  stage_started_at timestamptz,
  -- When a scheduled retry becomes due; error_* then hold the error it retries.
  retry_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  completed_at timestamptz,
  constraint status_is_known
    check (status in ('queued', 'processing', 'completed', 'failed', 'cancelled')),
  constraint attempts_is_an_object check (jsonb_typeof(attempts) = 'object'),
  constraint image_url_is_not_empty check (length(image_url) between 1 and 2048),
  constraint idempotency_key_is_short check (length(idempotency_key) between 1 and 255),
  constraint error_code_is_known check (error_code in (
    'invalid_url', 'blocked_address', 'http_status', 'dns_error', 'connection_error', 'timeout',
    'too_large', 'not_an_image', 'corrupt_image', 'ai_error', 'cancelled', 'internal'
  )),
  constraint error_is_complete check ((error_code is null) = (error_message is null))
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
  -- What stages without a recorder of their own returned, by stage (darkroom.record_generic).
  results jsonb not null default '{}'::jsonb,
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
  event_type text not null references darkroom.event_types (name),
  task_id uuid references public.tasks (id) on delete cascade,
  trace_id uuid not null,
  owner uuid,
  source text not null,
  payload jsonb not null default '{}'::jsonb,
  created_at timestamptz not null default clock_timestamp(),
  -- The writing transaction: a reader streams only rows older than every transaction still in
  -- flight (pg_snapshot_xmin), so a row with a lower seq can never appear behind its cursor.
  tx_id xid8 not null default pg_current_xact_id(),
  constraint events_id_key unique (id)
);
create index events_task_id_seq_idx on public.events (task_id, seq);
create index events_owner_seq_idx on public.events (owner, seq);
create index events_tx_id_seq_idx on public.events (tx_id, seq);

-- The tag -> image index the tag-indexer keeps.
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

-- One row per webhook the notifier sends to a task's callbackUrl.
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

-- Per-caller token buckets of the task-creation rate limit, shared by every function instance.
create table darkroom.rate_limit_buckets (
  subject text primary key,
  tokens double precision not null,
  refilled_at timestamptz not null default clock_timestamp(),
  constraint tokens_are_nonnegative check (tokens >= 0)
);
