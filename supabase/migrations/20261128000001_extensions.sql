-- Extensions Darkroom uses.
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
