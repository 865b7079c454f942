-- Per-caller rate limit on task creation: a token bucket per subject in
-- darkroom.rate_limit_buckets, so that every function instance shares it. Only the api (as the
-- database owner or service_role) takes tokens; clients can neither read nor spend a bucket.

-- Takes p_cost tokens from p_subject's bucket (capacity p_capacity, refilled at
-- p_refill_per_second). When the bucket holds too few, nothing is taken and the answer says
-- how many seconds until it will hold enough.
create or replace function darkroom.take_rate_limit_tokens(
  p_subject text,
  p_cost integer,
  p_capacity integer,
  p_refill_per_second double precision
) returns table (allowed boolean, remaining integer, retry_after_seconds integer)
language plpgsql volatile
set search_path = ''
as $$
#variable_conflict use_column
declare
  v_now constant timestamptz := clock_timestamp();
  v_tokens double precision;
  v_refilled_at timestamptz;
begin
  insert into darkroom.rate_limit_buckets as b (subject, tokens, refilled_at)
  values (p_subject, p_capacity, v_now)
  on conflict (subject) do nothing;

  select b.tokens, b.refilled_at into v_tokens, v_refilled_at
    from darkroom.rate_limit_buckets b where b.subject = p_subject for update;
  v_tokens := least(p_capacity::double precision,
                    v_tokens + extract(epoch from (v_now - v_refilled_at)) * p_refill_per_second);

  -- GUARD: too few tokens: take nothing, say when enough will be there.
  if v_tokens < p_cost then
    update darkroom.rate_limit_buckets b set tokens = v_tokens, refilled_at = v_now
     where b.subject = p_subject;
    return query select false, floor(v_tokens)::integer,
      greatest(1, ceil((p_cost - v_tokens) / p_refill_per_second))::integer;
    return;
  end if;

  update darkroom.rate_limit_buckets b set tokens = v_tokens - p_cost, refilled_at = v_now
   where b.subject = p_subject;
  return query select true, floor(v_tokens - p_cost)::integer, 0;
end
$$;
