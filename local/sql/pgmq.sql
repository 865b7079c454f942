-- pgmq-compatible message queues in plain SQL and PL/pgSQL, for local use only.
--
-- Supabase ships the pgmq extension; plain PostgreSQL 15 and PGlite do not, and it cannot be
-- installed there. local/bootstrap.ts runs this script only when neither the extension nor a
-- `pgmq` schema exists. It reproduces the public API of pgmq 1.5 (schema `pgmq`, function
-- names, argument names and types, result types, table layout) from pgmq's documented
-- behaviour, for the part of that API Darkroom and its tests use:
--
--   pgmq.create / drop_queue / list_queues
--   pgmq.send (+ headers jsonb, + delay int seconds or timestamptz)
--   pgmq.send_batch (+ headers jsonb[], + delay int seconds)
--   pgmq.read (with conditional) / read_with_poll / pop / set_vt
--   pgmq.delete / archive (one msg_id -> boolean, bigint[] -> setof bigint) / purge_queue
--   pgmq.metrics / metrics_all
--   pgmq.format_table_name / validate_queue_name (helpers pgmq exposes too)
--
-- Each queue is a table pgmq.q_<name> (msg_id identity, read_ct, enqueued_at, vt, message,
-- headers) plus an archive pgmq.a_<name> (the same columns and archived_at); pgmq.meta lists
-- the queues. Not here: partitioned and unlogged queues, detach_archive, notify-insert and the
-- other pgmq functions nothing in Darkroom calls.
--
-- Queue names are checked on EVERY call before any dynamic SQL is built: 1 to 47 characters,
-- letters, digits and underscore only (stricter than pgmq, never looser), and table names are
-- lower-cased as pgmq does. Every identifier also goes through format('%I'), and every value
-- through USING parameters, so nothing from the caller is spliced into SQL text.
--
-- The script is idempotent: it can run twice on the same database without changing anything.

create schema if not exists pgmq;
-- The marker local/bootstrap.ts reads to tell this layer from a pgmq someone else installed.
comment on schema pgmq is 'darkroom pgmq-compatible layer';

-- ---------------------------------------------------------------------------------------------
-- Catalogue of queues and the composite types the API returns
-- ---------------------------------------------------------------------------------------------

create table if not exists pgmq.meta (
  queue_name varchar unique not null,
  is_partitioned boolean not null,
  is_unlogged boolean not null,
  created_at timestamp with time zone default now() not null
);

-- GUARD: CREATE TYPE has no IF NOT EXISTS; create each type only when it is missing, so a second
-- run leaves types (and the functions that depend on them) alone.
do $$
begin
  if to_regtype('pgmq.message_record') is null then
    create type pgmq.message_record as (
      msg_id bigint,
      read_ct integer,
      enqueued_at timestamp with time zone,
      vt timestamp with time zone,
      message jsonb,
      headers jsonb
    );
  end if;

  if to_regtype('pgmq.queue_record') is null then
    create type pgmq.queue_record as (
      queue_name varchar,
      is_partitioned boolean,
      is_unlogged boolean,
      created_at timestamp with time zone
    );
  end if;

  if to_regtype('pgmq.metrics_result') is null then
    create type pgmq.metrics_result as (
      queue_name text,
      queue_length bigint,
      newest_msg_age_sec integer,
      oldest_msg_age_sec integer,
      total_messages bigint,
      scrape_time timestamp with time zone,
      queue_visible_length bigint
    );
  end if;
end
$$;

-- ---------------------------------------------------------------------------------------------
-- Queue names
-- ---------------------------------------------------------------------------------------------

-- Raises unless queue_name is 1..47 characters of [A-Za-z0-9_]. 47 = 63 (the identifier limit)
-- minus the longest prefix pgmq puts in front of a queue name.
create or replace function pgmq.validate_queue_name(queue_name text)
returns void
language plpgsql
immutable
as $$
begin
  if queue_name is null or length(queue_name) = 0 then
    raise exception 'queue name must not be empty';
  end if;
  if length(queue_name) > 47 then
    raise exception 'queue name is too long, maximum length is 47 characters';
  end if;
  if queue_name !~ '^[A-Za-z0-9_]+$' then
    raise exception
      'queue name contains invalid characters: %, only letters, digits and _ are allowed',
      quote_literal(queue_name);
  end if;
end;
$$;

-- The table of a queue: prefix 'q' (messages) or 'a' (archive) + '_' + lower-cased name.
create or replace function pgmq.format_table_name(queue_name text, prefix text)
returns text
language plpgsql
immutable
as $$
begin
  perform pgmq.validate_queue_name(queue_name);
  if prefix is null or prefix !~ '^[a-z]+$' then
    raise exception 'invalid table prefix: %', quote_literal(prefix);
  end if;
  return lower(prefix || '_' || queue_name);
end;
$$;

-- ---------------------------------------------------------------------------------------------
-- Creating and dropping queues
-- ---------------------------------------------------------------------------------------------

-- Safe to call again for a queue that exists: every statement is IF NOT EXISTS / ON CONFLICT DO
-- NOTHING.
create or replace function pgmq."create"(queue_name text)
returns void
language plpgsql
as $$
declare
  qtable text := pgmq.format_table_name(queue_name, 'q');
  atable text := pgmq.format_table_name(queue_name, 'a');
begin
  -- Two sessions creating the same queue at once would race on the catalogue: serialise them.
  perform pg_advisory_xact_lock(hashtext('pgmq.queue_' || lower(queue_name)));

  execute format(
    $sql$
    create table if not exists pgmq.%I (
      msg_id bigint primary key generated always as identity,
      read_ct integer default 0 not null,
      enqueued_at timestamp with time zone default now() not null,
      vt timestamp with time zone not null,
      message jsonb,
      headers jsonb
    )
    $sql$,
    qtable
  );

  execute format(
    $sql$
    create table if not exists pgmq.%I (
      msg_id bigint primary key,
      read_ct integer default 0 not null,
      enqueued_at timestamp with time zone default now() not null,
      archived_at timestamp with time zone default now() not null,
      vt timestamp with time zone not null,
      message jsonb,
      headers jsonb
    )
    $sql$,
    atable
  );

  execute format('create index if not exists %I on pgmq.%I (vt asc)', qtable || '_vt_idx', qtable);
  execute format(
    'create index if not exists %I on pgmq.%I (archived_at)',
    'archived_at_idx_' || lower(queue_name), atable
  );

  -- GUARD: table names are lower-cased, so 'Jobs' and 'jobs' are one queue: keep one meta row.
  if not exists (
    select 1 from pgmq.meta m where lower(m.queue_name) = lower("create".queue_name)
  ) then
    insert into pgmq.meta (queue_name, is_partitioned, is_unlogged)
    values ("create".queue_name, false, false)
    on conflict do nothing;
  end if;
end;
$$;

-- Drops the queue and its archive. true when it existed; false (with a notice) when it did not.
create or replace function pgmq.drop_queue(queue_name text)
returns boolean
language plpgsql
as $$
declare
  qtable text := pgmq.format_table_name(queue_name, 'q');
  atable text := pgmq.format_table_name(queue_name, 'a');
begin
  perform pg_advisory_xact_lock(hashtext('pgmq.queue_' || lower(queue_name)));

  if to_regclass(format('pgmq.%I', qtable)) is null then
    raise notice 'pgmq queue `%` does not exist', queue_name;
    return false;
  end if;

  execute format('drop table if exists pgmq.%I', qtable);
  execute format('drop table if exists pgmq.%I', atable);
  delete from pgmq.meta m where lower(m.queue_name) = lower(drop_queue.queue_name);
  return true;
end;
$$;

create or replace function pgmq.list_queues()
returns setof pgmq.queue_record
language sql
stable
as $$
  select m.queue_name, m.is_partitioned, m.is_unlogged, m.created_at
  from pgmq.meta m
  order by m.queue_name;
$$;

-- ---------------------------------------------------------------------------------------------
-- Sending. The (queue_name, msg, headers, delay timestamptz) form does the work; the others
-- fill in what is missing: no headers = NULL, no delay = visible now, an integer delay = now +
-- that many seconds.
-- ---------------------------------------------------------------------------------------------

create or replace function pgmq.send(
  queue_name text,
  msg jsonb,
  headers jsonb,
  delay timestamp with time zone
)
returns setof bigint
language plpgsql
as $$
begin
  return query execute format(
    'insert into pgmq.%I (vt, message, headers) values ($1, $2, $3) returning msg_id',
    pgmq.format_table_name(queue_name, 'q')
  ) using coalesce(delay, clock_timestamp()), msg, headers;
end;
$$;

create or replace function pgmq.send(queue_name text, msg jsonb)
returns setof bigint
language sql
as $$
  select * from pgmq.send(queue_name, msg, null::jsonb, clock_timestamp());
$$;

create or replace function pgmq.send(queue_name text, msg jsonb, headers jsonb)
returns setof bigint
language sql
as $$
  select * from pgmq.send(queue_name, msg, headers, clock_timestamp());
$$;

create or replace function pgmq.send(queue_name text, msg jsonb, delay integer)
returns setof bigint
language sql
as $$
  select * from pgmq.send(
    queue_name, msg, null::jsonb, clock_timestamp() + make_interval(secs => delay)
  );
$$;

create or replace function pgmq.send(queue_name text, msg jsonb, delay timestamp with time zone)
returns setof bigint
language sql
as $$
  select * from pgmq.send(queue_name, msg, null::jsonb, delay);
$$;

create or replace function pgmq.send(queue_name text, msg jsonb, headers jsonb, delay integer)
returns setof bigint
language sql
as $$
  select * from pgmq.send(
    queue_name, msg, headers, clock_timestamp() + make_interval(secs => delay)
  );
$$;

-- One row per message, in array order; headers[i] goes with msgs[i] (NULL when headers is
-- NULL or shorter).
create or replace function pgmq.send_batch(
  queue_name text,
  msgs jsonb[],
  headers jsonb[],
  delay timestamp with time zone
)
returns setof bigint
language plpgsql
as $$
begin
  return query execute format(
    $sql$
    insert into pgmq.%I (vt, message, headers)
    select $1, m.msg, $3[m.ord]
    from unnest($2) with ordinality as m(msg, ord)
    order by m.ord
    returning msg_id
    $sql$,
    pgmq.format_table_name(queue_name, 'q')
  ) using coalesce(delay, clock_timestamp()), msgs, headers;
end;
$$;

create or replace function pgmq.send_batch(queue_name text, msgs jsonb[])
returns setof bigint
language sql
as $$
  select * from pgmq.send_batch(queue_name, msgs, null::jsonb[], clock_timestamp());
$$;

create or replace function pgmq.send_batch(queue_name text, msgs jsonb[], headers jsonb[])
returns setof bigint
language sql
as $$
  select * from pgmq.send_batch(queue_name, msgs, headers, clock_timestamp());
$$;

create or replace function pgmq.send_batch(queue_name text, msgs jsonb[], delay integer)
returns setof bigint
language sql
as $$
  select * from pgmq.send_batch(
    queue_name, msgs, null::jsonb[], clock_timestamp() + make_interval(secs => delay)
  );
$$;

-- ---------------------------------------------------------------------------------------------
-- Reading
-- ---------------------------------------------------------------------------------------------

-- Takes up to qty visible messages (vt <= now), oldest msg_id first, hides them for vt seconds
-- and counts the read. FOR UPDATE SKIP LOCKED: a message another transaction is taking right
-- now is skipped, so two readers never get the same message. conditional filters by
-- containment (message @> conditional); '{}' = no filter.
create or replace function pgmq.read(
  queue_name text,
  vt integer,
  qty integer,
  conditional jsonb default '{}'
)
returns setof pgmq.message_record
language plpgsql
as $$
begin
  return query execute format(
    $sql$
    with picked as (
      select q.msg_id
      from pgmq.%1$I q
      where q.vt <= clock_timestamp()
        and ($3 = '{}'::jsonb or q.message @> $3)
      order by q.msg_id
      limit $1
      for update skip locked
    ),
    taken as (
      update pgmq.%1$I q
      set vt = clock_timestamp() + $2,
          read_ct = q.read_ct + 1
      from picked
      where q.msg_id = picked.msg_id
      returning q.msg_id, q.read_ct, q.enqueued_at, q.vt, q.message, q.headers
    )
    select * from taken order by msg_id
    $sql$,
    pgmq.format_table_name(queue_name, 'q')
  ) using qty, make_interval(secs => vt), coalesce(conditional, '{}'::jsonb);
end;
$$;

-- read(), retried every poll_interval_ms until a message comes or max_poll_seconds pass.
-- It sleeps inside the session: never call it on PGlite (one session for everyone).
create or replace function pgmq.read_with_poll(
  queue_name text,
  vt integer,
  qty integer,
  max_poll_seconds integer default 5,
  poll_interval_ms integer default 100,
  conditional jsonb default '{}'
)
returns setof pgmq.message_record
language plpgsql
as $$
declare
  stop_at timestamp with time zone :=
    clock_timestamp() + make_interval(secs => read_with_poll.max_poll_seconds);
begin
  loop
    return query
      select * from pgmq.read(
        read_with_poll.queue_name,
        read_with_poll.vt,
        read_with_poll.qty,
        read_with_poll.conditional
      );
    if found or clock_timestamp() >= stop_at then
      return;
    end if;
    perform pg_sleep(read_with_poll.poll_interval_ms::numeric / 1000);
  end loop;
end;
$$;

-- Takes the oldest visible message and deletes it in the same statement (at-most-once).
create or replace function pgmq.pop(queue_name text)
returns setof pgmq.message_record
language plpgsql
as $$
begin
  return query execute format(
    $sql$
    with picked as (
      select q.msg_id
      from pgmq.%1$I q
      where q.vt <= clock_timestamp()
      order by q.msg_id
      limit 1
      for update skip locked
    )
    delete from pgmq.%1$I q
    using picked
    where q.msg_id = picked.msg_id
    returning q.msg_id, q.read_ct, q.enqueued_at, q.vt, q.message, q.headers
    $sql$,
    pgmq.format_table_name(queue_name, 'q')
  );
end;
$$;

-- Makes a message visible again vt seconds from now (0 = at once); returns it, or no row when
-- there is no such message. read_ct is left alone.
create or replace function pgmq.set_vt(queue_name text, msg_id bigint, vt integer)
returns setof pgmq.message_record
language plpgsql
as $$
begin
  return query execute format(
    $sql$
    update pgmq.%I q
    set vt = clock_timestamp() + $2
    where q.msg_id = $1
    returning q.msg_id, q.read_ct, q.enqueued_at, q.vt, q.message, q.headers
    $sql$,
    pgmq.format_table_name(queue_name, 'q')
  ) using msg_id, make_interval(secs => vt);
end;
$$;

-- ---------------------------------------------------------------------------------------------
-- Deleting and archiving
-- ---------------------------------------------------------------------------------------------

create or replace function pgmq."delete"(queue_name text, msg_id bigint)
returns boolean
language plpgsql
as $$
declare
  n bigint;
begin
  execute format(
    'delete from pgmq.%I q where q.msg_id = $1',
    pgmq.format_table_name(queue_name, 'q')
  ) using msg_id;
  get diagnostics n = row_count;
  return n > 0;
end;
$$;

-- Returns the ids that were deleted (ids that do not exist are left out).
create or replace function pgmq."delete"(queue_name text, msg_ids bigint[])
returns setof bigint
language plpgsql
as $$
begin
  return query execute format(
    'delete from pgmq.%I q where q.msg_id = any($1) returning q.msg_id',
    pgmq.format_table_name(queue_name, 'q')
  ) using msg_ids;
end;
$$;

-- Moves messages from q_<name> to a_<name> (archived_at = now) in one statement.
create or replace function pgmq.archive(queue_name text, msg_ids bigint[])
returns setof bigint
language plpgsql
as $$
begin
  return query execute format(
    $sql$
    with moved as (
      delete from pgmq.%I q
      where q.msg_id = any($1)
      returning q.msg_id, q.read_ct, q.enqueued_at, q.vt, q.message, q.headers
    )
    insert into pgmq.%I (msg_id, read_ct, enqueued_at, vt, message, headers)
    select moved.msg_id, moved.read_ct, moved.enqueued_at, moved.vt, moved.message, moved.headers
    from moved
    returning msg_id
    $sql$,
    pgmq.format_table_name(queue_name, 'q'),
    pgmq.format_table_name(queue_name, 'a')
  ) using msg_ids;
end;
$$;

create or replace function pgmq.archive(queue_name text, msg_id bigint)
returns boolean
language sql
as $$
  select exists (select 1 from pgmq.archive(queue_name, array[msg_id]));
$$;

-- Deletes every message of the queue (not its archive); returns how many there were.
create or replace function pgmq.purge_queue(queue_name text)
returns bigint
language plpgsql
as $$
declare
  n bigint;
begin
  execute format('delete from pgmq.%I', pgmq.format_table_name(queue_name, 'q'));
  get diagnostics n = row_count;
  return n;
end;
$$;

-- ---------------------------------------------------------------------------------------------
-- Metrics
-- ---------------------------------------------------------------------------------------------

-- queue_length: messages in the queue; queue_visible_length: those readable now; ages in whole
-- seconds (NULL when empty); total_messages: every message ever sent (the id sequence).
create or replace function pgmq.metrics(queue_name text)
returns pgmq.metrics_result
language plpgsql
as $$
declare
  qtable text := pgmq.format_table_name(queue_name, 'q');
  result pgmq.metrics_result;
begin
  execute format(
    $sql$
    select
      $1::text,
      count(*)::bigint,
      extract(epoch from (now() - max(q.enqueued_at)))::integer,
      extract(epoch from (now() - min(q.enqueued_at)))::integer,
      (select case when s.is_called then s.last_value else 0 end from %s s)::bigint,
      now(),
      (count(*) filter (where q.vt <= now()))::bigint
    from pgmq.%I q
    $sql$,
    pg_get_serial_sequence(format('pgmq.%I', qtable), 'msg_id'),
    qtable
  ) into result using queue_name;
  return result;
end;
$$;

create or replace function pgmq.metrics_all()
returns setof pgmq.metrics_result
language plpgsql
as $$
declare
  qname text;
begin
  for qname in select m.queue_name from pgmq.meta m order by m.queue_name loop
    return next pgmq.metrics(qname);
  end loop;
end;
$$;

-- ---------------------------------------------------------------------------------------------
-- Privileges: as with the pgmq extension, only the owner (and postgres) use pgmq; service_role,
-- anon and authenticated get nothing here. A migration grants service_role Darkroom's queues.
-- ---------------------------------------------------------------------------------------------

-- GUARD: functions are executable by PUBLIC by default; take that away so that only the roles
-- granted below (and owners / superusers) can call them.
revoke all on schema pgmq from public;
revoke execute on all functions in schema pgmq from public;
alter default privileges in schema pgmq revoke execute on functions from public;

-- GUARD: grant only to roles that exist (service_role comes from the Supabase stand-ins; a bare
-- database may have neither).
do $$
declare
  r text;
  table_privs constant text := 'select, insert, update, delete, truncate';
begin
  foreach r in array array['postgres'] loop
    if exists (select 1 from pg_roles where rolname = r) then
      execute format('grant usage on schema pgmq to %I', r);
      execute format('grant execute on all functions in schema pgmq to %I', r);
      execute format('grant %s on all tables in schema pgmq to %I', table_privs, r);
      execute format('grant usage, select on all sequences in schema pgmq to %I', r);
      -- Queues created later (by this role) get the same grants.
      execute format(
        'alter default privileges in schema pgmq grant %s on tables to %I', table_privs, r
      );
      execute format(
        'alter default privileges in schema pgmq grant usage, select on sequences to %I', r
      );
      execute format(
        'alter default privileges in schema pgmq grant execute on functions to %I', r
      );
    end if;
  end loop;
end
$$;
