-- Provider limits: token buckets per (provider, model) for requests and for tokens per window,
-- shared by every worker invocation, taken from atomically by one function (the pattern of the
-- task-creation rate limit, 20261128000008). The limits come from the settings (AI_RPM, AI_TPM,
-- AI_LIMIT_WINDOW_SECONDS; defaults: OpenAI's tier-1 limits of gpt-4o-mini) unless a row of
-- darkroom.provider_limits names other ones for that (provider, model).
--
-- No window of p_window_seconds admits more than the limit: a bucket holds at most `burst`
-- units (a small share of the limit) and refills at (limit - burst - 1) per window, so that
-- burst + refill over any window < limit, one unit spare for the jitter between admission and
-- arrival at the provider.

-- Limits set in SQL, winning over the settings for their (provider, model). Null: the setting.
create table if not exists darkroom.provider_limits (
  provider text not null,
  model text not null,
  requests_per_window integer,
  tokens_per_window integer,
  window_seconds integer,
  updated_at timestamptz not null default now(),
  constraint provider_limits_pkey primary key (provider, model),
  constraint requests_per_window_is_positive check (requests_per_window > 0),
  constraint tokens_per_window_is_positive check (tokens_per_window > 0),
  constraint window_seconds_is_positive check (window_seconds > 0)
);

-- One bucket per (provider, model, kind); kind 'requests' or 'tokens'. tokens may go below zero
-- when an analysis spent more than it was estimated at (a debt the refill pays back).
create table if not exists darkroom.provider_buckets (
  provider text not null,
  model text not null,
  kind text not null,
  tokens double precision not null,
  capacity double precision not null,
  refill_per_second double precision not null,
  refilled_at timestamptz not null default clock_timestamp(),
  -- A 429 from the provider: nothing is admitted before then.
  blocked_until timestamptz,
  -- The next free slot handed to a waiter, so waiters come back spread at the refill rate
  -- rather than all at once.
  next_slot_at timestamptz,
  constraint provider_buckets_pkey primary key (provider, model, kind),
  constraint kind_is_known check (kind in ('requests', 'tokens')),
  constraint capacity_is_positive check (capacity > 0)
);

-- The limits that apply to (provider, model): the table's row, else the settings given.
create or replace function darkroom.provider_limits_for(
  p_provider text,
  p_model text,
  p_requests_per_window integer,
  p_tokens_per_window integer,
  p_window_seconds integer
) returns table (requests_per_window integer, tokens_per_window integer, window_seconds integer)
language sql stable
set search_path = ''
as $$
  select coalesce(l.requests_per_window, p_requests_per_window),
         coalesce(l.tokens_per_window, p_tokens_per_window),
         coalesce(l.window_seconds, p_window_seconds)
    from (select 1) one
    left join darkroom.provider_limits l on l.provider = p_provider and l.model = p_model
$$;

-- Refills one bucket to now and returns it locked (made on first use, full).
create or replace function darkroom._provider_bucket(
  p_provider text,
  p_model text,
  p_kind text,
  p_limit integer,
  p_window_seconds integer,
  p_burst double precision
) returns darkroom.provider_buckets
language plpgsql volatile
set search_path = ''
as $$
declare
  v_now constant timestamptz := clock_timestamp();
  v_capacity constant double precision :=
    case when p_limit <= 1 then 1
         else greatest(1, least(p_limit - 1, ceil(p_limit * p_burst))) end;
  -- One unit of the limit is kept spare for the time between admission and the request reaching
  -- the provider, which differs from call to call.
  v_rate constant double precision :=
    greatest(p_limit - v_capacity - 1, 1) / greatest(p_window_seconds, 1)::double precision;
  v_bucket darkroom.provider_buckets;
begin
  insert into darkroom.provider_buckets as b
    (provider, model, kind, tokens, capacity, refill_per_second, refilled_at)
  values (p_provider, p_model, p_kind, v_capacity, v_capacity, v_rate, v_now)
  on conflict on constraint provider_buckets_pkey do nothing;
  select b.* into v_bucket from darkroom.provider_buckets b
   where b.provider = p_provider and b.model = p_model and b.kind = p_kind for update;
  v_bucket.tokens := least(v_capacity, v_bucket.tokens
    + greatest(extract(epoch from (v_now - v_bucket.refilled_at)), 0) * v_bucket.refill_per_second);
  v_bucket.capacity := v_capacity;
  v_bucket.refill_per_second := v_rate;
  v_bucket.refilled_at := v_now;
  return v_bucket;
end
$$;

-- Takes one request and p_tokens tokens for (provider, model), from both buckets or from
-- neither. When either holds too few (or a 429 blocks the model), nothing is taken and the
-- answer says how many seconds to wait: the waiter's own slot, so waiters come back one by one.
create or replace function darkroom.take_provider_tokens(
  p_provider text,
  p_model text,
  p_tokens integer,
  p_requests_per_window integer,
  p_tokens_per_window integer,
  p_window_seconds integer,
  p_burst double precision default 0.1
) returns table (allowed boolean, retry_after_seconds double precision)
language plpgsql volatile
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
  v_now constant timestamptz := clock_timestamp();
  v_limits record;
  v_req darkroom.provider_buckets;
  v_tok darkroom.provider_buckets;
  v_cost double precision;
  v_wait double precision := 0::double precision;
  v_slot timestamptz;
begin
  select * into v_limits from darkroom.provider_limits_for(p_provider, p_model,
    p_requests_per_window, p_tokens_per_window, p_window_seconds);
  -- Locked in one order (requests, then tokens): two takers never wait on each other crosswise.
  v_req := darkroom._provider_bucket(p_provider, p_model, 'requests',
    v_limits.requests_per_window, v_limits.window_seconds, p_burst);
  v_tok := darkroom._provider_bucket(p_provider, p_model, 'tokens',
    v_limits.tokens_per_window, v_limits.window_seconds, p_burst);
  -- An analysis estimated above the whole bucket could never pass: it takes a full bucket.
  v_cost := least(greatest(p_tokens, 0)::double precision, v_tok.capacity);

  if v_req.blocked_until > v_now then
    v_wait := extract(epoch from (v_req.blocked_until - v_now))::double precision;
  end if;
  if v_req.tokens < 1 then
    v_wait := greatest(v_wait, (1 - v_req.tokens) / v_req.refill_per_second);
  end if;
  if v_tok.tokens < v_cost then
    v_wait := greatest(v_wait, (v_cost - v_tok.tokens) / v_tok.refill_per_second);
  end if;

  -- GUARD: too few tokens (or blocked): take nothing; hand out the next free slot.
  if v_wait > 0 then
    v_slot := greatest(coalesce(v_req.next_slot_at, v_now), v_now + make_interval(secs => v_wait));
    update darkroom.provider_buckets b
       set tokens = v_req.tokens, capacity = v_req.capacity,
           refill_per_second = v_req.refill_per_second, refilled_at = v_now,
           next_slot_at = v_slot + make_interval(secs => 1 / v_req.refill_per_second)
     where b.provider = p_provider and b.model = p_model and b.kind = 'requests';
    update darkroom.provider_buckets b
       set tokens = v_tok.tokens, capacity = v_tok.capacity,
           refill_per_second = v_tok.refill_per_second, refilled_at = v_now
     where b.provider = p_provider and b.model = p_model and b.kind = 'tokens';
    return query select false, extract(epoch from (v_slot - v_now))::double precision;
    return;
  end if;

  update darkroom.provider_buckets b
     set tokens = v_req.tokens - 1, capacity = v_req.capacity,
         refill_per_second = v_req.refill_per_second, refilled_at = v_now
   where b.provider = p_provider and b.model = p_model and b.kind = 'requests';
  update darkroom.provider_buckets b
     set tokens = v_tok.tokens - v_cost, capacity = v_tok.capacity,
         refill_per_second = v_tok.refill_per_second, refilled_at = v_now
   where b.provider = p_provider and b.model = p_model and b.kind = 'tokens';
  return query select true, 0::double precision;
end
$$;

-- A 429 from the provider: both buckets of (provider, model) are emptied and nothing is admitted
-- for p_retry_after_seconds (its Retry-After).
create or replace function darkroom.drain_provider_buckets(
  p_provider text,
  p_model text,
  p_retry_after_seconds double precision
) returns void
language sql volatile
security definer
set search_path = ''
as $$
  update darkroom.provider_buckets b
     set tokens = least(b.tokens, 0), refilled_at = clock_timestamp(),
         blocked_until = greatest(coalesce(b.blocked_until, clock_timestamp()),
           clock_timestamp() + make_interval(secs => greatest(p_retry_after_seconds, 1)))
   where b.provider = p_provider and b.model = p_model
$$;

-- Books the difference between what an analysis spent and what was taken for it (p_delta > 0:
-- spent more) on the tokens bucket.
create or replace function darkroom.settle_provider_tokens(
  p_provider text,
  p_model text,
  p_delta double precision
) returns void
language sql volatile
set search_path = ''
as $$
  update darkroom.provider_buckets b
     set tokens = least(b.capacity, b.tokens - p_delta)
   where b.provider = p_provider and b.model = p_model and b.kind = 'tokens'
$$;

revoke all on darkroom.provider_limits, darkroom.provider_buckets from public, anon, authenticated;
grant select, insert, update, delete on darkroom.provider_limits to service_role;
grant select on darkroom.provider_buckets to service_role;
revoke all on function darkroom.provider_limits_for(text, text, integer, integer, integer),
  darkroom._provider_bucket(text, text, text, integer, integer, double precision),
  darkroom.take_provider_tokens(text, text, integer, integer, integer, integer, double precision),
  darkroom.drain_provider_buckets(text, text, double precision),
  darkroom.settle_provider_tokens(text, text, double precision)
  from public, anon, authenticated;
grant execute on function
  darkroom.take_provider_tokens(text, text, integer, integer, integer, integer, double precision),
  darkroom.drain_provider_buckets(text, text, double precision)
  to service_role;
