-- Schemas and extensions.
--
-- public holds only what clients may see: the tables under row level security. Everything else
-- (the pipeline registry, the state transitions, helpers, rate-limit buckets) lives in the
-- private schema `darkroom`, which config.toml's `[api] schemas` does not expose: PostgREST and
-- pg_graphql cannot reach it, so the api function is the one door for writes.

create schema if not exists darkroom;
comment on schema darkroom is 'Darkroom internals: not exposed through the Data API';
-- GUARD: a new schema is not usable by PUBLIC, but say so: nothing here is for clients except
-- what 20261128000009_grants.sql grants by name.
revoke all on schema darkroom from public;

-- pgmq: the task queues. On Supabase it is the pgmq extension. Locally (plain PostgreSQL,
-- PGlite) the platform installs a pgmq-compatible schema before migrations run; whatever
-- `pgmq` is there already is used as it is.
do $$
begin
  if not exists (select 1 from pg_namespace where nspname = 'pgmq') then
    create extension if not exists pgmq;
  end if;
end
$$;
