-- Pay once per image, never over budget. Before the AI stage calls a billed provider it asks
-- darkroom.admit_analysis, in one transaction:
--   1. reuse: a completed analysis of the same (image sha256, provider, model, prompt version)
--      is reused (per owner by default; across owners only when the setting opts in);
--   2. one call per image in flight: the first task claims the key, the others wait (released,
--      no try spent) until its analysis exists or its claim is stale;
--   3. budgets: today's (UTC) spend plus what admitted calls reserved, global and per owner, in
--      tokens or in USD from darkroom.ai_prices, must leave room for this call;
--   4. provider limits (20261128000021).
-- darkroom.record_analysis (redefined here) books what the call spent when the stage completes.
-- Tables here are internal: the reused analysis is copied into the task's own images row, which
-- row level security guards as before.

-- Completed analyses by content: what reuse finds.
create table if not exists darkroom.analyses (
  id uuid primary key default gen_random_uuid(),
  sha256 text not null,
  provider text not null,
  model text not null,
  prompt_version text not null,
  owner uuid,
  task_id uuid,
  -- {provider, model, caption, tags, safety, usage} as the provider answered it.
  analysis jsonb not null,
  created_at timestamptz not null default now(),
  constraint sha256_is_hex check (sha256 ~ '^[0-9a-f]{64}$')
);
create index if not exists analyses_key_idx
  on darkroom.analyses (sha256, provider, model, prompt_version, created_at desc);

-- The task that is calling the provider for a key right now. scope: the owner's uuid, 'anon'
-- for ownerless tasks, or '*' when reuse crosses owners.
create table if not exists darkroom.analysis_claims (
  sha256 text not null,
  provider text not null,
  model text not null,
  prompt_version text not null,
  scope text not null,
  task_id uuid not null,
  expires_at timestamptz not null,
  constraint analysis_claims_pkey primary key (sha256, provider, model, prompt_version, scope)
);

-- Prices per million tokens, a row per model; editable. Seeded with OpenAI's published prices
-- (https://openai.com/api/pricing/, standard tier).
create table if not exists darkroom.ai_prices (
  provider text not null,
  model text not null,
  input_usd_per_mtok numeric not null,
  output_usd_per_mtok numeric not null,
  updated_at timestamptz not null default now(),
  constraint ai_prices_pkey primary key (provider, model),
  constraint prices_are_nonnegative check (input_usd_per_mtok >= 0 and output_usd_per_mtok >= 0)
);
insert into darkroom.ai_prices (provider, model, input_usd_per_mtok, output_usd_per_mtok) values
  ('openai', 'gpt-4o-mini', 0.15, 0.60),
  ('openai', 'gpt-4o', 2.50, 10.00),
  ('openai', 'gpt-4.1-mini', 0.40, 1.60),
  ('openai', 'gpt-4.1-nano', 0.10, 0.40)
on conflict do nothing;

-- Daily caps (UTC day), winning over the settings: scope 'global', 'owner' (every owner's
-- default) or an owner's uuid. A null column: the setting (unset setting: no cap).
create table if not exists darkroom.ai_budgets (
  scope text primary key,
  daily_tokens bigint,
  daily_usd numeric,
  updated_at timestamptz not null default now(),
  constraint daily_tokens_is_nonnegative check (daily_tokens >= 0),
  constraint daily_usd_is_nonnegative check (daily_usd >= 0)
);

-- The ledger of analyses: one row per call made ('call') or saved by reuse ('reuse'). Appended,
-- never updated, so concurrent completions never wait on a shared counter row.
create table if not exists darkroom.ai_calls (
  id bigint generated always as identity primary key,
  day date not null default (now() at time zone 'UTC')::date,
  owner uuid,
  provider text not null,
  model text not null,
  kind text not null,
  task_id uuid,
  prompt_tokens bigint not null default 0,
  completion_tokens bigint not null default 0,
  total_tokens bigint not null default 0,
  usd numeric not null default 0,
  created_at timestamptz not null default now(),
  constraint kind_is_known check (kind in ('call', 'reuse'))
);
create index if not exists ai_calls_day_owner_idx on darkroom.ai_calls (day, owner);

-- What an admitted call may spend until it is booked: counted against the budgets meanwhile.
create table if not exists darkroom.ai_reservations (
  task_id uuid primary key,
  owner uuid,
  day date not null,
  tokens bigint not null,
  usd numeric not null,
  expires_at timestamptz not null
);

-- The cost of tokens in USD at (provider, model)'s price; 0 when it has no price row.
create or replace function darkroom.ai_cost_usd(
  p_provider text,
  p_model text,
  p_prompt_tokens bigint,
  p_completion_tokens bigint
) returns numeric
language sql stable
set search_path = ''
as $$
  select coalesce((select (p_prompt_tokens * p.input_usd_per_mtok
                           + p_completion_tokens * p.output_usd_per_mtok) / 1000000
                     from darkroom.ai_prices p
                    where p.provider = p_provider and p.model = p_model), 0)
$$;

-- Today's spend (booked and reserved, this task's own reservation apart) of one owner, or of
-- everyone when p_all.
create or replace function darkroom.ai_spent_today(p_owner uuid, p_all boolean, p_task_id uuid)
returns table (tokens bigint, usd numeric)
language sql stable
set search_path = ''
as $$
  with today as (select (now() at time zone 'UTC')::date as d)
  select coalesce(sum(x.tokens), 0)::bigint, coalesce(sum(x.usd), 0)
    from (select c.total_tokens as tokens, c.usd from darkroom.ai_calls c, today
           where c.day = today.d and c.kind = 'call'
             and (p_all or c.owner is not distinct from p_owner)
          union all
          select r.tokens, r.usd from darkroom.ai_reservations r, today
           where r.day = today.d and r.expires_at > now() and r.task_id <> p_task_id
             and (p_all or r.owner is not distinct from p_owner)) x
$$;

-- The cap for a scope: the table's, else the setting's (null: no cap).
create or replace function darkroom.ai_budget_for(
  p_scope text,
  p_fallback_scope text,
  p_tokens bigint,
  p_usd numeric
) returns table (daily_tokens bigint, daily_usd numeric)
language sql stable
set search_path = ''
as $$
  select coalesce(b.daily_tokens, f.daily_tokens, p_tokens), coalesce(b.daily_usd, f.daily_usd, p_usd)
    from (select 1) one
    left join darkroom.ai_budgets b on b.scope = p_scope
    left join darkroom.ai_budgets f on f.scope = p_fallback_scope
$$;

-- Decides what the AI stage does for a task before calling a billed provider: 'reuse' (with the
-- analysis and its id), 'call' (claimed, budget reserved, rate tokens taken) or 'wait' (with the
-- reason, tasks.waiting_is_known, and the seconds to wait). p_settings: {crossTenant,
-- claimSeconds, reusePollSeconds, estimatedTokens, budgetRecheckSeconds, dailyTokens, dailyUsd,
-- ownerDailyTokens, ownerDailyUsd, requestsPerWindow, tokensPerWindow, windowSeconds, burst}.
create or replace function darkroom.admit_analysis(
  p_task_id uuid,
  p_sha256 text,
  p_provider text,
  p_model text,
  p_prompt_version text,
  p_force boolean,
  p_settings jsonb
) returns table (action text, reason text, delay_seconds double precision, analysis_id uuid,
                 analysis jsonb, detail jsonb)
language plpgsql volatile
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
  v_now constant timestamptz := now();
  v_cross constant boolean := coalesce((p_settings ->> 'crossTenant')::boolean, false);
  v_estimate constant bigint := greatest(coalesce((p_settings ->> 'estimatedTokens')::bigint, 0), 0);
  v_task public.tasks;
  v_scope text;
  v_found darkroom.analyses;
  v_claim darkroom.analysis_claims;
  v_holder public.tasks;
  v_cap record;
  v_spent record;
  v_est_usd numeric;
  v_take record;
  v_until_midnight double precision;
begin
  select t.* into v_task from public.tasks t where t.id = p_task_id;
  v_scope := case when v_cross then '*' else coalesce(v_task.owner::text, 'anon') end;

  -- 1. Reuse: a completed analysis of the same key, within the scope.
  if not p_force then
    select a.* into v_found from darkroom.analyses a
     where a.sha256 = p_sha256 and a.provider = p_provider and a.model = p_model
       and a.prompt_version = p_prompt_version
       and (v_cross or a.owner is not distinct from v_task.owner)
     order by a.created_at desc limit 1;
    if found then
      update public.tasks t set waiting = null, waiting_until = null
       where t.id = p_task_id and t.waiting is not null;
      return query select 'reuse', null::text, 0::double precision, v_found.id, v_found.analysis,
        '{}'::jsonb;
      return;
    end if;

    -- 2. One call per key in flight: claim it, or wait for whoever holds it.
    insert into darkroom.analysis_claims as c
      (sha256, provider, model, prompt_version, scope, task_id, expires_at)
    values (p_sha256, p_provider, p_model, p_prompt_version, v_scope, p_task_id,
            v_now + make_interval(secs => coalesce((p_settings ->> 'claimSeconds')::integer, 120)))
    on conflict on constraint analysis_claims_pkey do nothing;
    select c.* into v_claim from darkroom.analysis_claims c
     where c.sha256 = p_sha256 and c.provider = p_provider and c.model = p_model
       and c.prompt_version = p_prompt_version and c.scope = v_scope
     for update;
    if v_claim.task_id <> p_task_id then
      select t.* into v_holder from public.tasks t where t.id = v_claim.task_id;
      -- GUARD: the holder still works on the key (at the AI stage, not ended, claim fresh):
      -- wait for its analysis.
      if v_claim.expires_at > v_now and v_holder.id is not null
         and v_holder.stage = 'ai' and v_holder.status in ('queued', 'processing') then
        return query select 'wait', 'reuse',
          greatest(1, least(extract(epoch from (v_claim.expires_at - v_now)),
                            coalesce((p_settings ->> 'reusePollSeconds')::double precision, 2))),
          null::uuid, null::jsonb, jsonb_build_object('claimedBy', v_claim.task_id);
        return;
      end if;
      -- A stale claim (its task ended or moved on without an analysis): take it over.
      update darkroom.analysis_claims c
         set task_id = p_task_id,
             expires_at = v_now
               + make_interval(secs => coalesce((p_settings ->> 'claimSeconds')::integer, 120))
       where c.sha256 = p_sha256 and c.provider = p_provider and c.model = p_model
         and c.prompt_version = p_prompt_version and c.scope = v_scope;
    end if;
  end if;

  -- 3. Budgets: this call's estimate must fit under every cap that applies.
  v_est_usd := darkroom.ai_cost_usd(p_provider, p_model, v_estimate, 0);
  v_until_midnight := extract(epoch from (date_trunc('day', v_now at time zone 'UTC')
                        + interval '1 day' - (v_now at time zone 'UTC')))::double precision;
  for v_cap in
    select 'global' as scope, true as all_owners, b.daily_tokens, b.daily_usd
      from darkroom.ai_budget_for('global', null, (p_settings ->> 'dailyTokens')::bigint,
                                  (p_settings ->> 'dailyUsd')::numeric) b
    union all
    select 'owner', false, b.daily_tokens, b.daily_usd
      from darkroom.ai_budget_for(coalesce(v_task.owner::text, 'anon'), 'owner',
                                  (p_settings ->> 'ownerDailyTokens')::bigint,
                                  (p_settings ->> 'ownerDailyUsd')::numeric) b
  loop
    continue when v_cap.daily_tokens is null and v_cap.daily_usd is null;
    -- Budget checks run one at a time: two calls must not both fit in the last room left.
    perform pg_advisory_xact_lock(hashtext('darkroom.ai_budget'));
    select * into v_spent from darkroom.ai_spent_today(v_task.owner, v_cap.all_owners, p_task_id);
    -- GUARD: over a cap: give the claim back (others may find room under their own cap) and wait
    -- until the day rolls over or the cap is raised (checked every budgetRecheckSeconds).
    if (v_cap.daily_tokens is not null and v_spent.tokens + v_estimate > v_cap.daily_tokens)
       or (v_cap.daily_usd is not null and v_spent.usd + v_est_usd > v_cap.daily_usd) then
      delete from darkroom.analysis_claims c where c.task_id = p_task_id;
      return query select 'wait', 'budget',
        greatest(1, least(v_until_midnight,
                          coalesce((p_settings ->> 'budgetRecheckSeconds')::double precision, 60))),
        null::uuid, null::jsonb,
        jsonb_build_object('budget', v_cap.scope, 'spentTokens', v_spent.tokens,
                           'dailyTokens', v_cap.daily_tokens, 'spentUsd', v_spent.usd,
                           'dailyUsd', v_cap.daily_usd);
      return;
    end if;
  end loop;

  -- 4. Provider limits.
  select * into v_take from darkroom.take_provider_tokens(p_provider, p_model, v_estimate::integer,
    (p_settings ->> 'requestsPerWindow')::integer, (p_settings ->> 'tokensPerWindow')::integer,
    (p_settings ->> 'windowSeconds')::integer,
    coalesce((p_settings ->> 'burst')::double precision, 0.1));
  if not v_take.allowed then
    return query select 'wait', 'rate_limit', v_take.retry_after_seconds, null::uuid, null::jsonb,
      '{}'::jsonb;
    return;
  end if;

  insert into darkroom.ai_reservations as r (task_id, owner, day, tokens, usd, expires_at)
  values (p_task_id, v_task.owner, (v_now at time zone 'UTC')::date, v_estimate, v_est_usd,
          v_now + make_interval(secs => coalesce((p_settings ->> 'claimSeconds')::integer, 120)))
  on conflict (task_id) do update
    set owner = excluded.owner, day = excluded.day, tokens = excluded.tokens, usd = excluded.usd,
        expires_at = excluded.expires_at;
  update public.tasks t set waiting = null, waiting_until = null
   where t.id = p_task_id and t.waiting is not null;
  return query select 'call', null::text, 0::double precision, null::uuid, null::jsonb,
    jsonb_build_object('estimatedTokens', v_estimate);
end
$$;

-- ai: {analysis, promptVersion?, reusedFrom?, estimatedTokens?} -> the image's analysis; the
-- event carries it (usage apart), with reused, analysisId (the analysis the task shows),
-- sourceAnalysisId when reused, and costUsd. A fresh call is kept for reuse and booked; its
-- claim and reservation end.
create or replace function darkroom.record_analysis(p_task public.tasks, p_result jsonb)
returns jsonb
language plpgsql volatile
set search_path = ''
as $$
declare
  v_image public.images;
  v_source darkroom.analyses;
  v_analysis jsonb := p_result -> 'analysis';
  v_id uuid;
  v_pt bigint;
  v_ct bigint;
  v_usd numeric;
  v_reused boolean := false;
begin
  if p_result ? 'reusedFrom' then
    select a.* into v_source from darkroom.analyses a
     where a.id = (p_result ->> 'reusedFrom')::uuid;
    if found then
      v_reused := true;
      v_id := v_source.id;
      v_analysis := v_source.analysis || jsonb_build_object('usage', jsonb_build_object(
        'promptTokens', 0, 'completionTokens', 0, 'totalTokens', 0));
    end if;
  end if;
  -- GUARD: a result with no analysis (a reuse whose source is gone) cannot be recorded.
  if v_analysis is null or jsonb_typeof(v_analysis) <> 'object' then
    raise exception 'task % has no analysis to record', p_task.id using errcode = '22023';
  end if;

  update public.images im set analysis = v_analysis, updated_at = now()
   where im.task_id = p_task.id
  returning * into v_image;
  -- GUARD: the download stage made the row; without it there is nothing to analyse.
  if not found then
    raise exception 'task % has no image to analyse', p_task.id using errcode = 'P0002';
  end if;

  v_pt := coalesce((v_analysis -> 'usage' ->> 'promptTokens')::bigint, 0);
  v_ct := coalesce((v_analysis -> 'usage' ->> 'completionTokens')::bigint, 0);
  if v_reused then
    v_usd := 0;
    insert into darkroom.ai_calls (owner, provider, model, kind, task_id)
    values (p_task.owner, v_source.provider, v_source.model, 'reuse', p_task.id);
  else
    v_usd := darkroom.ai_cost_usd(v_analysis ->> 'provider', v_analysis ->> 'model', v_pt, v_ct);
  end if;
  -- A metered provider's fresh call (admitted by admit_analysis, so it names its prompt
  -- version): kept for reuse, its claim and reservation ended, booked in the ledger. An unmetered
  -- provider's analysis is neither kept nor booked.
  if not v_reused and p_result ? 'promptVersion' then
    insert into darkroom.analyses (sha256, provider, model, prompt_version, owner, task_id,
                                   analysis)
    values (v_image.sha256, v_analysis ->> 'provider', v_analysis ->> 'model',
            p_result ->> 'promptVersion', p_task.owner, p_task.id, v_analysis)
    returning id into v_id;
    delete from darkroom.analysis_claims c where c.task_id = p_task.id;
    delete from darkroom.ai_reservations r where r.task_id = p_task.id;
    insert into darkroom.ai_calls (owner, provider, model, kind, task_id, prompt_tokens,
                                   completion_tokens, total_tokens, usd)
    values (p_task.owner, v_analysis ->> 'provider', v_analysis ->> 'model', 'call', p_task.id,
            v_pt, v_ct, coalesce((v_analysis -> 'usage' ->> 'totalTokens')::bigint, v_pt + v_ct),
            v_usd);
    if p_result ? 'estimatedTokens' then
      perform darkroom.settle_provider_tokens(v_analysis ->> 'provider', v_analysis ->> 'model',
        coalesce((v_analysis -> 'usage' ->> 'totalTokens')::double precision, 0)
          - (p_result ->> 'estimatedTokens')::double precision);
    end if;
  end if;

  return jsonb_build_object('imageId', v_image.id) || (v_analysis - 'usage')
    || jsonb_build_object('usage', v_analysis -> 'usage', 'reused', v_reused,
                          'costUsd', v_usd)
    || case when v_id is null then '{}'::jsonb
            else jsonb_build_object('analysisId', v_id) end
    || case when v_reused then jsonb_build_object('sourceAnalysisId', v_id) else '{}'::jsonb end;
end
$$;

-- The AI part of GET /stats for the caller (as darkroom.stats(): the caller's own rows, every
-- owner's for service_role): calls made and saved by reuse, tokens and cost per day (last 7),
-- today's budget use, and, for service_role only, the provider buckets' levels.
create or replace function darkroom.ai_stats(p_settings jsonb default '{}'::jsonb) returns jsonb
language sql stable
security definer
set search_path = ''
as $$
  with caller as (
    select auth.role() = 'service_role' as all_owners, auth.uid() as uid
  ), days as (
    select c.day, count(*) filter (where c.kind = 'call') as calls,
           count(*) filter (where c.kind = 'reuse') as reused,
           sum(c.prompt_tokens)::bigint as pt, sum(c.completion_tokens)::bigint as ct,
           sum(c.total_tokens)::bigint as tt, sum(c.usd) as usd
      from darkroom.ai_calls c, caller
     where c.day > (now() at time zone 'UTC')::date - 7
       and (caller.all_owners or c.owner = caller.uid)
     group by c.day
  ), today as (
    -- The bare anon key owns nothing: no spend of ownerless tasks is shown to it.
    select case when caller.all_owners or caller.uid is not null then s.tokens else 0 end
             as tokens,
           case when caller.all_owners or caller.uid is not null then s.usd else 0 end as usd
      from caller, darkroom.ai_spent_today(caller.uid, caller.all_owners,
                                           '00000000-0000-0000-0000-000000000000') s
  ), cap as (
    select b.daily_tokens, b.daily_usd
      from caller, darkroom.ai_budget_for(
        case when caller.all_owners then 'global' else coalesce(caller.uid::text, 'anon') end,
        case when caller.all_owners then null else 'owner' end,
        (p_settings ->> case when caller.all_owners then 'dailyTokens'
                             else 'ownerDailyTokens' end)::bigint,
        (p_settings ->> case when caller.all_owners then 'dailyUsd'
                             else 'ownerDailyUsd' end)::numeric) b
  )
  select jsonb_build_object(
    'callsMade', (select coalesce(sum(calls), 0) from days),
    'callsSavedByReuse', (select coalesce(sum(reused), 0) from days),
    'days', (select coalesce(jsonb_agg(jsonb_build_object(
        'day', day, 'calls', calls, 'reused', reused, 'promptTokens', pt,
        'completionTokens', ct, 'totalTokens', tt, 'usd', round(usd, 6)) order by day desc), '[]')
      from days),
    'budget', (select jsonb_build_object('scope',
        case when (select all_owners from caller) then 'global' else 'own' end,
        'spentTokens', today.tokens, 'spentUsd', round(today.usd, 6),
        'dailyTokens', cap.daily_tokens, 'dailyUsd', cap.daily_usd)
      from today, cap),
    'buckets', case when (select all_owners from caller) then (
        select coalesce(jsonb_agg(jsonb_build_object(
          'provider', b.provider, 'model', b.model, 'kind', b.kind,
          'level', round(least(b.capacity, b.tokens + greatest(extract(epoch from
                   (clock_timestamp() - b.refilled_at)), 0) * b.refill_per_second)::numeric, 2),
          'capacity', b.capacity,
          'blockedUntil', case when b.blocked_until > now() then b.blocked_until end)
          order by b.provider, b.model, b.kind), '[]')
          from darkroom.provider_buckets b) end
  )
$$;

revoke all on darkroom.analyses, darkroom.analysis_claims, darkroom.ai_prices,
  darkroom.ai_budgets, darkroom.ai_calls, darkroom.ai_reservations
  from public, anon, authenticated;
grant select on darkroom.analyses, darkroom.analysis_claims, darkroom.ai_calls,
  darkroom.ai_reservations to service_role;
grant select, insert, update, delete on darkroom.ai_prices, darkroom.ai_budgets to service_role;
revoke all on function darkroom.ai_cost_usd(text, text, bigint, bigint),
  darkroom.ai_spent_today(uuid, boolean, uuid),
  darkroom.ai_budget_for(text, text, bigint, numeric),
  darkroom.admit_analysis(uuid, text, text, text, text, boolean, jsonb),
  darkroom.record_analysis(public.tasks, jsonb),
  darkroom.ai_stats(jsonb)
  from public, anon, authenticated;
grant execute on function darkroom.admit_analysis(uuid, text, text, text, text, boolean, jsonb)
  to service_role;
-- The api runs it as the caller's role (asCaller): it filters by auth.uid() itself.
grant execute on function darkroom.ai_stats(jsonb) to anon, authenticated, service_role;
