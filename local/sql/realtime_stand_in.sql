-- Local stand-in for the part of Supabase Realtime's `realtime` schema that Broadcast from the
-- database uses: realtime.messages, realtime.topic() and realtime.send(...), shaped as Supabase
-- Realtime's own migrations make them (lib/realtime/tenants/repo/migrations), so the
-- migrations' triggers and policies are the real ones. The local Realtime server
-- (local/realtime/broadcast.ts) relays the rows send() inserts and authorises private joins by
-- the select policies on realtime.messages, as Supabase Realtime does.
--
-- MUST run before the migrations: they look for this schema to decide whether to broadcast.
-- Changes nothing where a realtime schema exists that is not this stand-in (a Supabase database).
-- Idempotent: safe to run at every start.

do $$
begin
  -- GUARD: someone else's realtime schema (Supabase's): use it as it is.
  if exists (
    select 1 from pg_namespace
     where nspname = 'realtime'
       and coalesce(obj_description(oid, 'pg_namespace'), '') <> 'darkroom realtime stand-in'
  ) then
    return;
  end if;

  create schema if not exists realtime;
  comment on schema realtime is 'darkroom realtime stand-in';
  grant usage on schema realtime to anon, authenticated, service_role;

  -- Supabase's columns (it partitions by inserted_at; one table is enough here), plus `seq` and
  -- `tx_id` for the relay's cursor (shared/settled_cursor.ts), which Supabase reads from the WAL.
  create table if not exists realtime.messages (
    topic text not null,
    extension text not null,
    payload jsonb,
    event text,
    private boolean default false,
    updated_at timestamp without time zone default now() not null,
    inserted_at timestamp without time zone default now() not null,
    id uuid default gen_random_uuid() not null,
    seq bigint generated always as identity,
    tx_id xid8 not null default pg_current_xact_id(),
    constraint messages_pkey primary key (id, inserted_at)
  );
  create index if not exists messages_tx_id_seq_idx on realtime.messages (tx_id, seq);
  create index if not exists messages_inserted_at_topic_index on realtime.messages (inserted_at desc, topic)
    where extension = 'broadcast' and private is true;
  alter table realtime.messages enable row level security;
  -- Supabase's grants: clients reach rows only through the policies the project writes.
  grant select, insert, update on realtime.messages to anon, authenticated, service_role;

  create or replace function realtime.topic() returns text
  language sql stable
  as $fn$
    select nullif(current_setting('realtime.topic', true), '')::text;
  $fn$;

  -- Supabase's realtime.send: the payload gets the message id unless it has an `id`; errors
  -- become a WARNING, so a failed broadcast never rolls back the change it reports.
  create or replace function realtime.send(
    payload jsonb,
    event text,
    topic text,
    private boolean default true
  ) returns void
  language plpgsql
  as $fn$
  declare
    generated_id uuid;
    final_payload jsonb;
  begin
    begin
      generated_id := gen_random_uuid();
      if payload ? 'id' then
        final_payload := payload;
      else
        final_payload := jsonb_set(payload, '{id}', to_jsonb(generated_id));
      end if;
      execute format('set local realtime.topic to %L', topic);
      insert into realtime.messages (id, payload, event, topic, private, extension)
      values (generated_id, final_payload, event, topic, private, 'broadcast');
    exception
      when others then
        raise warning 'ErrorSendingBroadcastMessage: %', sqlerrm;
    end;
  end;
  $fn$;
end
$$;
