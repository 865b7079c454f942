-- Local stand-in for Supabase Realtime's change capture (PGlite has no logical replication):
-- a trigger logs every row change of the tables Realtime serves into _realtime.changes, which
-- the local Realtime server (local/realtime/) reads and delivers under each subscriber's RLS.
-- Local only: on Supabase, Realtime reads the WAL of the supabase_realtime publication.
-- Idempotent: safe to run at every start.

create schema if not exists _realtime;
-- Internal: no client role may read the log (it holds every row, whatever its owner).
revoke all on schema _realtime from public;

create table if not exists _realtime.changes (
  seq bigint generated always as identity primary key,
  schema_name text not null,
  table_name text not null,
  type text not null,
  -- The new row (INSERT, UPDATE) as to_jsonb gives it, which is how Realtime renders values.
  record jsonb,
  -- The primary key of the old row (UPDATE, DELETE): all Supabase sends for a table with RLS.
  old_record jsonb,
  commit_ts timestamptz not null default clock_timestamp(),
  -- The writing transaction: a reader hands out a row only once this is older than every
  -- transaction still in flight (pg_snapshot_xmin), reading in (tx_id, seq) order.
  tx_id xid8 not null default pg_current_xact_id(),
  constraint type_is_known check (type in ('INSERT', 'UPDATE', 'DELETE'))
);
create index if not exists changes_tx_id_seq_idx on _realtime.changes (tx_id, seq);
create index if not exists changes_commit_ts_idx on _realtime.changes (commit_ts);

-- Whether anyone listens: the local Realtime server keeps `until` in the future while a channel
-- with postgres_changes bindings is joined (local/realtime/change_log.ts keepLogging). Without a
-- listener nothing is logged, as Supabase's Realtime decodes the WAL only for its subscribers:
-- the log would cost every write a row nobody reads.
create table if not exists _realtime.listening (
  id boolean primary key default true,
  until timestamptz not null,
  constraint one_row check (id)
);

-- Logs one row change. TG_ARGV[0] names the primary key column (kept in old_record).
create or replace function _realtime.log_change() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_pk text := TG_ARGV[0];
begin
  -- GUARD: nobody listens to postgres_changes (no live lease): nothing to log.
  if not exists (select 1 from _realtime.listening l where l.until > now()) then
    return null;
  end if;
  insert into _realtime.changes (schema_name, table_name, type, record, old_record)
  values (
    TG_TABLE_SCHEMA,
    TG_TABLE_NAME,
    TG_OP,
    case when TG_OP in ('INSERT', 'UPDATE') then to_jsonb(NEW) end,
    case when TG_OP in ('UPDATE', 'DELETE') then jsonb_build_object(v_pk, to_jsonb(OLD) -> v_pk) end
  );
  return null; -- AFTER trigger: the result is ignored
end
$$;
revoke all on function _realtime.log_change() from public;

-- The tables Realtime serves are those of the supabase_realtime publication, which the migrations
-- fill (the one list): each gets the logging trigger, keyed by its single-column primary key.
do $$
declare
  t record;
begin
  -- A table taken out of the publication stops being logged.
  for t in
    select n.nspname, c.relname
      from pg_trigger g
      join pg_class c on c.oid = g.tgrelid
      join pg_namespace n on n.oid = c.relnamespace
     where g.tgname = 'realtime_changes' and not g.tgisinternal
  loop
    execute format('drop trigger realtime_changes on %I.%I', t.nspname, t.relname);
  end loop;
  for t in
    select c.oid, n.nspname, c.relname, a.attname
      from pg_publication_tables p
      join pg_namespace n on n.nspname = p.schemaname
      join pg_class c on c.relnamespace = n.oid and c.relname = p.tablename
      join pg_index i on i.indrelid = c.oid and i.indisprimary and i.indnatts = 1
      join pg_attribute a on a.attrelid = c.oid and a.attnum = i.indkey[0]
     where p.pubname = 'supabase_realtime'
  loop
    execute format(
      'create trigger realtime_changes after insert or update or delete on %I.%I '
      'for each row execute function _realtime.log_change(%L)',
      t.nspname, t.relname, t.attname);
  end loop;
end
$$;
