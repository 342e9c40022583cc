-- Up Migration

-- Command quotas: rules per command type (a default for every user, and per-user overrides),
-- user tiers, usage per user and command type in the current day, ISO week and month,
-- reservations of admitted commands, and executions. Usage and executions are durable: the
-- functions below commit with synchronous_commit on, whatever the server's default.

-- A rule's limits per period; NULL: no limit in that period. user_id "*": every user;
-- command_type "*": any command type without a rule of its own. The service caches the rules per
-- replica and reloads on NOTIFY quota_config 'command_quota_rules'.
CREATE TABLE command_quota_rules (
  user_id               text NOT NULL,
  command_type          text NOT NULL,
  daily_limit           bigint CHECK (daily_limit >= 0),
  weekly_limit          bigint CHECK (weekly_limit >= 0),
  monthly_limit         bigint CHECK (monthly_limit >= 0),
  cpu_estimate_percent  double precision NOT NULL DEFAULT 0 CHECK (cpu_estimate_percent >= 0),
  memory_estimate_bytes bigint NOT NULL DEFAULT 0 CHECK (memory_estimate_bytes >= 0),
  updated_at            timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, command_type)
);

CREATE TRIGGER command_quota_rules_notify
  AFTER INSERT OR UPDATE OR DELETE ON command_quota_rules
  FOR EACH STATEMENT EXECUTE FUNCTION quota_notify_config();

-- The defaults a new installation starts with (listed in the README).
INSERT INTO command_quota_rules
  (user_id, command_type, daily_limit, weekly_limit, monthly_limit, cpu_estimate_percent, memory_estimate_bytes) VALUES
  ('*', 'shell',    500,  3000, 10000, 10, 100000000),
  ('*', 'code',     300,  1500,  5000, 15, 200000000),
  ('*', 'test',    1000,  5000, 20000,  5,  50000000),
  ('*', 'review',   200,  1000,  3000, 20, 300000000),
  ('*', 'refactor', 200,  1000,  3000, 20, 300000000),
  ('*', '*',        100,   500,  2000, 10, 100000000)
ON CONFLICT DO NOTHING;

-- The tiers, for reference and integrity; what each does lives in the service (src/quotas/tiers.ts):
-- multiplier NULL is unlimited.
CREATE TABLE quota_tiers (
  name       text PRIMARY KEY,
  multiplier integer CHECK (multiplier >= 1),
  delayed    boolean NOT NULL
);

INSERT INTO quota_tiers (name, multiplier, delayed) VALUES
  ('default', 1, true), ('premium', 10, true), ('enterprise', NULL, false)
ON CONFLICT DO NOTHING;

-- Users whose tier is not `default`. NOTIFY quota_config 'user_tiers' on every change.
CREATE TABLE user_tiers (
  user_id    text PRIMARY KEY,
  tier       text NOT NULL REFERENCES quota_tiers (name),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TRIGGER user_tiers_notify
  AFTER INSERT OR UPDATE OR DELETE ON user_tiers
  FOR EACH STATEMENT EXECUTE FUNCTION quota_notify_config();

-- One row per user and command type: the usage of the period that starts at each *_start. A
-- decision in a later period rolls the counter forward (to 0) before it counts; one row (one
-- lock, one write) serves all three periods of a decision.
CREATE TABLE command_usage (
  user_id      text NOT NULL,
  command_type text NOT NULL,
  day_start    timestamptz NOT NULL DEFAULT '-infinity',
  day_used     bigint NOT NULL DEFAULT 0,
  week_start   timestamptz NOT NULL DEFAULT '-infinity',
  week_used    bigint NOT NULL DEFAULT 0,
  month_start  timestamptz NOT NULL DEFAULT '-infinity',
  month_used   bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (user_id, command_type)
);

CREATE INDEX command_usage_month_start ON command_usage (month_start);

-- An admitted command's units, until an execution settles it. A reservation never settled stays
-- counted; after expires_at a cancellation no longer gives its units back. The *_start columns
-- name the periods it was counted in: units go back only to those.
CREATE TABLE command_reservations (
  id           uuid PRIMARY KEY,
  user_id      text NOT NULL,
  command_type text NOT NULL,
  cost         bigint NOT NULL CHECK (cost >= 1),
  day_start    timestamptz NOT NULL,
  week_start   timestamptz NOT NULL,
  month_start  timestamptz NOT NULL,
  created_at   timestamptz NOT NULL,
  expires_at   timestamptz NOT NULL,
  settled_at   timestamptz,
  execution_id uuid
);

CREATE INDEX command_reservations_expires ON command_reservations (expires_at);

CREATE TABLE command_executions (
  id             uuid PRIMARY KEY,
  -- The idempotency key of the RecordExecution call that stored it.
  request_key    text UNIQUE,
  reservation_id uuid,
  user_id        text NOT NULL,
  command_type   text NOT NULL,
  host           text NOT NULL DEFAULT '',
  started_at     timestamptz NOT NULL,
  duration_ms    double precision NOT NULL CHECK (duration_ms >= 0),
  cpu_percent    double precision NOT NULL CHECK (cpu_percent >= 0),
  memory_bytes   bigint NOT NULL CHECK (memory_bytes >= 0),
  exit_code      integer NOT NULL,
  status         text NOT NULL
                 CHECK (status IN ('completed', 'failed', 'timeout', 'cancelled', 'not_started')),
  recorded_at    timestamptz NOT NULL
);

CREATE INDEX command_executions_user_recorded ON command_executions (user_id, recorded_at);
CREATE INDEX command_executions_recorded ON command_executions (recorded_at);

-- Start (inclusive) and end (exclusive) of the day, ISO week and month containing p_now in p_tz.
CREATE FUNCTION command_quota_bounds(p_tz text, p_now timestamptz,
  OUT day_start timestamptz, OUT day_end timestamptz,
  OUT week_start timestamptz, OUT week_end timestamptz,
  OUT month_start timestamptz, OUT month_end timestamptz)
LANGUAGE sql STABLE AS $$
  SELECT date_trunc('day', p_now AT TIME ZONE p_tz) AT TIME ZONE p_tz,
         (date_trunc('day', p_now AT TIME ZONE p_tz) + interval '1 day') AT TIME ZONE p_tz,
         date_trunc('week', p_now AT TIME ZONE p_tz) AT TIME ZONE p_tz,
         (date_trunc('week', p_now AT TIME ZONE p_tz) + interval '1 week') AT TIME ZONE p_tz,
         date_trunc('month', p_now AT TIME ZONE p_tz) AT TIME ZONE p_tz,
         (date_trunc('month', p_now AT TIME ZONE p_tz) + interval '1 month') AT TIME ZONE p_tz
$$;

-- Usage per user, command type and period, as stored (the period that starts at period_start).
CREATE VIEW command_usage_periods AS
  SELECT user_id, command_type, 'daily'::text AS period, day_start AS period_start, day_used AS used
    FROM command_usage
  UNION ALL
  SELECT user_id, command_type, 'weekly', week_start, week_used FROM command_usage
  UNION ALL
  SELECT user_id, command_type, 'monthly', month_start, month_used FROM command_usage;

-- Figures of executions recorded in (p_since, p_until], per user and command type and per user
-- (command_type NULL); p_user NULL: every user. GetQuotaStatus reads one user's.
CREATE FUNCTION command_execution_summary(p_user text, p_since timestamptz, p_until timestamptz)
RETURNS TABLE (user_id text, command_type text, executions bigint, failures bigint,
               average_duration_ms double precision, p95_duration_ms double precision,
               average_cpu_percent double precision, max_memory_bytes bigint)
LANGUAGE sql STABLE AS $$
  SELECT x.user_id, x.command_type, count(*),
         count(*) FILTER (WHERE x.exit_code <> 0 OR x.status <> 'completed'),
         avg(x.duration_ms), percentile_cont(0.95) WITHIN GROUP (ORDER BY x.duration_ms),
         avg(x.cpu_percent), max(x.memory_bytes)
    FROM command_executions x
   WHERE (p_user IS NULL OR x.user_id = p_user)
     AND x.recorded_at > p_since AND x.recorded_at <= p_until
   GROUP BY GROUPING SETS ((x.user_id, x.command_type), (x.user_id))
$$;

-- Executions of the last 24 hours per user and command type, and per user.
CREATE VIEW command_execution_summary_24h AS
  SELECT * FROM command_execution_summary(NULL, now() - interval '24 hours', now());

-- Locks the usage rows of the (user, command type) pairs given, in that order, creating missing
-- ones, and returns their state in the same order. Callers pass pairs in one order on every
-- replica, so concurrent decisions never wait on each other in a cycle.
CREATE FUNCTION command_usage_lock(c_users text[], c_types text[])
RETURNS SETOF command_usage
LANGUAGE plpgsql AS $$
DECLARE
  row command_usage;
BEGIN
  FOR i IN 1 .. coalesce(array_length(c_users, 1), 0) LOOP
    SELECT * INTO row FROM command_usage u
     WHERE u.user_id = c_users[i] AND u.command_type = c_types[i] FOR UPDATE;
    IF NOT FOUND THEN
      INSERT INTO command_usage (user_id, command_type) VALUES (c_users[i], c_types[i])
        ON CONFLICT DO NOTHING;
      SELECT * INTO row FROM command_usage u
       WHERE u.user_id = c_users[i] AND u.command_type = c_types[i] FOR UPDATE;
    END IF;
    RETURN NEXT row;
  END LOOP;
END
$$;

-- Command quota decisions, several per call, each all-or-nothing over its three periods: a
-- decision that any period denies consumes nothing. Batching is what lets one user go past one
-- durable commit per command: the decisions of a batch share one statement, one lock per usage
-- row and one commit.
--
-- Usage rows (c_*) are distinct and in lock order. Decision d counts on row d_counter[d], costs
-- d_cost[d] and is limited by d_daily/d_weekly/d_monthly[d] (NULL: unlimited); an admitted one
-- gets reservation d_reservation[d]. d_idem[d] (NULL: none) makes it idempotent. Returns a jsonb
-- array with, per decision, {allowed, exhausted: [periods], used: [day, week, month],
-- resets_ms: [day, week, month], reservation_id, replayed?}.
--
-- p_budget_ms is the time the batch has from its entry here (see quota_decide): past it nothing
-- is written and query_canceled (57014) is raised. p_now is the time of the decision; NULL (what
-- the service passes) is the database clock after the locks.
CREATE FUNCTION command_quota_decide(
  c_users text[], c_types text[],
  d_counter int[], d_cost bigint[], d_daily bigint[], d_weekly bigint[], d_monthly bigint[],
  d_idem text[], d_reservation uuid[],
  p_tz text, p_ttl_s int, p_budget_ms int, p_now timestamptz DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  entered timestamptz := clock_timestamp();
  nc int := coalesce(array_length(c_users, 1), 0);
  nd int := coalesce(array_length(d_cost, 1), 0);
  ts timestamptz;
  b record;
  resets jsonb;
  s_day bigint[];
  s_week bigint[];
  s_month bigint[];
  touched boolean[] := array_fill(false, ARRAY[greatest(nc, 1)]);
  results jsonb[] := array_fill(NULL::jsonb, ARRAY[greatest(nd, 1)]);
  idem_keys text[] := '{}';
  idem_answers jsonb[] := '{}';
  r_ids uuid[] := '{}';
  r_counter int[] := '{}';
  r_cost bigint[] := '{}';
  stored jsonb;
  exhausted text[];
  u command_usage;
  ci int;
  cost bigint;
BEGIN
  -- Admitted commands are durable: a crash after the answer loses none.
  PERFORM set_config('synchronous_commit', 'on', true);
  IF p_budget_ms IS NULL OR p_budget_ms < 1 THEN
    RAISE EXCEPTION 'command_quota_decide: a budget of % ms leaves no time to decide', p_budget_ms
      USING ERRCODE = 'query_canceled';
  END IF;
  PERFORM set_config('lock_timeout', p_budget_ms || 'ms', true);

  IF EXISTS (SELECT 1 FROM unnest(d_idem) k WHERE k IS NOT NULL) THEN
    -- Serialises concurrent retries of one request, in key order and before any row lock.
    PERFORM pg_advisory_xact_lock(hashtextextended(k, 0))
       FROM (SELECT DISTINCT k FROM unnest(d_idem) k WHERE k IS NOT NULL ORDER BY k) s;
    FOR d IN 1..nd LOOP
      IF d_idem[d] IS NOT NULL THEN
        SELECT response INTO stored FROM idempotency_keys
         WHERE key = d_idem[d] AND expires_at > coalesce(p_now, clock_timestamp());
        IF FOUND THEN
          results[d] := stored || '{"replayed": true}'::jsonb;
        END IF;
      END IF;
    END LOOP;
  END IF;

  s_day := array_fill(0::bigint, ARRAY[greatest(nc, 1)]);
  s_week := s_day;
  s_month := s_day;
  -- The time of the decision is after the locks: a batch that waited for another must not count
  -- in a period that the other has already moved past.
  ci := 0;
  FOR u IN SELECT * FROM command_usage_lock(c_users, c_types) LOOP
    ci := ci + 1;
    IF ci = 1 THEN
      ts := coalesce(p_now, clock_timestamp());
      SELECT * INTO b FROM command_quota_bounds(p_tz, ts);
    END IF;
    -- A stored period older than the current one is over: its count starts again at 0. A newer
    -- one (a clock set back) is kept as the current one.
    s_day[ci] := CASE WHEN u.day_start < b.day_start THEN 0 ELSE u.day_used END;
    s_week[ci] := CASE WHEN u.week_start < b.week_start THEN 0 ELSE u.week_used END;
    s_month[ci] := CASE WHEN u.month_start < b.month_start THEN 0 ELSE u.month_used END;
  END LOOP;
  IF ts IS NULL THEN
    ts := coalesce(p_now, clock_timestamp());
    SELECT * INTO b FROM command_quota_bounds(p_tz, ts);
  END IF;
  resets := jsonb_build_array(
    floor(extract(epoch FROM b.day_end) * 1000)::bigint,
    floor(extract(epoch FROM b.week_end) * 1000)::bigint,
    floor(extract(epoch FROM b.month_end) * 1000)::bigint);

  FOR d IN 1..nd LOOP
    CONTINUE WHEN results[d] IS NOT NULL;
    ci := d_counter[d];
    cost := d_cost[d];
    exhausted := '{}';
    IF d_daily[d] IS NOT NULL AND s_day[ci] + cost > d_daily[d] THEN
      exhausted := exhausted || 'daily'::text;
    END IF;
    IF d_weekly[d] IS NOT NULL AND s_week[ci] + cost > d_weekly[d] THEN
      exhausted := exhausted || 'weekly'::text;
    END IF;
    IF d_monthly[d] IS NOT NULL AND s_month[ci] + cost > d_monthly[d] THEN
      exhausted := exhausted || 'monthly'::text;
    END IF;
    IF cardinality(exhausted) = 0 THEN
      s_day[ci] := s_day[ci] + cost;
      s_week[ci] := s_week[ci] + cost;
      s_month[ci] := s_month[ci] + cost;
      touched[ci] := true;
      r_ids := r_ids || d_reservation[d];
      r_counter := r_counter || ci;
      r_cost := r_cost || cost;
    END IF;
    results[d] := jsonb_build_object(
      'allowed', cardinality(exhausted) = 0,
      'exhausted', to_jsonb(exhausted),
      'used', jsonb_build_array(s_day[ci], s_week[ci], s_month[ci]),
      'resets_ms', resets,
      'reservation_id', CASE WHEN cardinality(exhausted) = 0 THEN d_reservation[d] END);
    IF d_idem[d] IS NOT NULL THEN
      idem_keys := idem_keys || d_idem[d];
      idem_answers := idem_answers || results[d];
    END IF;
  END LOOP;

  FOR ci IN 1..nc LOOP
    CONTINUE WHEN NOT touched[ci];
    UPDATE command_usage cu
       SET day_start = greatest(cu.day_start, b.day_start), day_used = s_day[ci],
           week_start = greatest(cu.week_start, b.week_start), week_used = s_week[ci],
           month_start = greatest(cu.month_start, b.month_start), month_used = s_month[ci]
     WHERE cu.user_id = c_users[ci] AND cu.command_type = c_types[ci];
  END LOOP;

  IF cardinality(r_ids) > 0 THEN
    INSERT INTO command_reservations
      (id, user_id, command_type, cost, day_start, week_start, month_start, created_at, expires_at)
    SELECT r.id, c_users[r.ci], c_types[r.ci], r.cost,
           greatest(cu.day_start, b.day_start), greatest(cu.week_start, b.week_start),
           greatest(cu.month_start, b.month_start), ts, ts + p_ttl_s * interval '1 second'
      FROM unnest(r_ids, r_counter, r_cost) AS r(id, ci, cost)
      JOIN command_usage cu ON cu.user_id = c_users[r.ci] AND cu.command_type = c_types[r.ci];
  END IF;

  IF cardinality(idem_keys) > 0 THEN
    INSERT INTO idempotency_keys (key, response, expires_at)
    SELECT k, a, ts + interval '24 hours' FROM unnest(idem_keys, idem_answers) AS u(k, a)
    ON CONFLICT (key) DO UPDATE SET response = EXCLUDED.response, expires_at = EXCLUDED.expires_at;
  END IF;

  -- Last, after every write: the earliest caller may have been answered with the failure mode
  -- by now, and the error rolls all of it back. Only the commit itself comes after this.
  IF clock_timestamp() > entered + p_budget_ms * interval '1 millisecond' THEN
    RAISE EXCEPTION 'command_quota_decide: deadline of % ms passed before the commit', p_budget_ms
      USING ERRCODE = 'query_canceled';
  END IF;
  RETURN to_jsonb(results);
END
$$;

-- Executions, several per call, each stored durably and on its own: an item that names an
-- unknown reservation, one of another user or command type, or one already settled is answered
-- with an error and writes nothing; the others are stored. Per item: a reservation (NULL: none),
-- an idempotency key (NULL: none), its usage row e_counter into c_* (pairs in lock order), the
-- figures, and whether its status gives the units back (e_refund). An execution with no
-- reservation is counted in the current periods when recorded (a refunded status is not).
-- Returns a jsonb array with, per item, {execution_id, replayed?} or {error: not_found |
-- mismatch | settled, message}.
CREATE FUNCTION command_record_executions(
  c_users text[], c_types text[],
  e_counter int[], e_reservation uuid[], e_idem text[], e_host text[], e_started_at timestamptz[],
  e_duration_ms double precision[], e_cpu double precision[], e_memory bigint[], e_exit int[],
  e_status text[], e_refund boolean[],
  p_tz text, p_budget_ms int, p_now timestamptz DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  entered timestamptz := clock_timestamp();
  nc int := coalesce(array_length(c_users, 1), 0);
  ne int := coalesce(array_length(e_counter, 1), 0);
  ts timestamptz;
  b record;
  res record;
  u command_usage;
  results jsonb[] := array_fill(NULL::jsonb, ARRAY[greatest(ne, 1)]);
  s_exists boolean[] := array_fill(false, ARRAY[greatest(nc, 1)]);
  s_day_start timestamptz[] := array_fill('-infinity'::timestamptz, ARRAY[greatest(nc, 1)]);
  s_week_start timestamptz[] := s_day_start;
  s_month_start timestamptz[] := s_day_start;
  s_day bigint[] := array_fill(0::bigint, ARRAY[greatest(nc, 1)]);
  s_week bigint[] := s_day;
  s_month bigint[] := s_day;
  touched boolean[] := array_fill(false, ARRAY[greatest(nc, 1)]);
  needs boolean[] := array_fill(false, ARRAY[greatest(nc, 1)]);
  creates boolean[] := array_fill(false, ARRAY[greatest(nc, 1)]);
  x_ids uuid[] := '{}';
  x_items int[] := '{}';
  settled_ids uuid[] := '{}';
  settled_by uuid[] := '{}';
  existing uuid;
  ci int;
  new_id uuid;
BEGIN
  PERFORM set_config('synchronous_commit', 'on', true);
  IF p_budget_ms IS NULL OR p_budget_ms < 1 THEN
    RAISE EXCEPTION 'command_record_executions: a budget of % ms leaves no time', p_budget_ms
      USING ERRCODE = 'query_canceled';
  END IF;
  PERFORM set_config('lock_timeout', p_budget_ms || 'ms', true);

  -- Concurrent retries of one request wait for the first, then find what it stored.
  PERFORM pg_advisory_xact_lock(hashtextextended(k, 0))
     FROM (SELECT DISTINCT k FROM unnest(e_idem) k WHERE k IS NOT NULL ORDER BY k) s;
  -- Reservations before usage rows, each kind in one order: decisions take only usage rows, in
  -- the same order, so no two batches wait on each other in a cycle.
  PERFORM 1 FROM command_reservations cr
   WHERE cr.id IN (SELECT r FROM unnest(e_reservation) r WHERE r IS NOT NULL)
   ORDER BY cr.id FOR UPDATE;
  -- Only rows an item may change: a count (no reservation) or a refund. A completed execution
  -- of a reservation leaves usage as it is, and so never waits for a decision on its row. A
  -- count creates its row if missing; a refund does not (an item answered with an error must
  -- not create one, and a refund has nothing to give back to a row that is gone).
  FOR e IN 1..ne LOOP
    IF e_reservation[e] IS NULL AND NOT e_refund[e] THEN
      needs[e_counter[e]] := true;
      creates[e_counter[e]] := true;
    ELSIF e_reservation[e] IS NOT NULL AND e_refund[e] THEN
      needs[e_counter[e]] := true;
    END IF;
  END LOOP;
  -- Each row locked, or created and locked, in the order given, as decisions do: no insert
  -- waits out of that order, so no two statements wait on each other in a cycle.
  FOR ci IN 1..nc LOOP
    CONTINUE WHEN NOT needs[ci];
    SELECT * INTO u FROM command_usage cu
     WHERE cu.user_id = c_users[ci] AND cu.command_type = c_types[ci] FOR UPDATE;
    IF NOT FOUND AND creates[ci] THEN
      INSERT INTO command_usage (user_id, command_type) VALUES (c_users[ci], c_types[ci])
        ON CONFLICT DO NOTHING;
      SELECT * INTO u FROM command_usage cu
       WHERE cu.user_id = c_users[ci] AND cu.command_type = c_types[ci] FOR UPDATE;
    END IF;
    IF FOUND THEN
      s_exists[ci] := true;
      s_day_start[ci] := u.day_start; s_day[ci] := u.day_used;
      s_week_start[ci] := u.week_start; s_week[ci] := u.week_used;
      s_month_start[ci] := u.month_start; s_month[ci] := u.month_used;
    END IF;
  END LOOP;

  ts := coalesce(p_now, clock_timestamp());
  SELECT * INTO b FROM command_quota_bounds(p_tz, ts);

  FOR e IN 1..ne LOOP
    IF e_idem[e] IS NOT NULL THEN
      SELECT x.id INTO existing FROM command_executions x WHERE x.request_key = e_idem[e];
      IF FOUND THEN
        results[e] := jsonb_build_object('execution_id', existing, 'replayed', true);
        CONTINUE;
      END IF;
    END IF;
    ci := e_counter[e];
    IF e_reservation[e] IS NOT NULL THEN
      SELECT * INTO res FROM command_reservations r WHERE r.id = e_reservation[e];
      IF NOT FOUND THEN
        results[e] := jsonb_build_object('error', 'not_found',
          'message', format('reservation %s not found', e_reservation[e]));
        CONTINUE;
      END IF;
      IF res.user_id <> c_users[ci] OR res.command_type <> c_types[ci] THEN
        results[e] := jsonb_build_object('error', 'mismatch', 'message',
          format('reservation %s is not for this user_id and command_type', e_reservation[e]));
        CONTINUE;
      END IF;
      IF res.settled_at IS NOT NULL OR e_reservation[e] = ANY (settled_ids) THEN
        results[e] := jsonb_build_object('error', 'settled', 'message',
          format('reservation %s is already settled by another execution', e_reservation[e]));
        CONTINUE;
      END IF;
      -- Units go back only before the reservation expires, and only to the periods they were
      -- counted in: a period that has rolled over has nothing of them left to give back.
      IF e_refund[e] AND res.expires_at > ts AND s_exists[ci] THEN
        IF s_day_start[ci] = res.day_start THEN s_day[ci] := greatest(0, s_day[ci] - res.cost); END IF;
        IF s_week_start[ci] = res.week_start THEN s_week[ci] := greatest(0, s_week[ci] - res.cost); END IF;
        IF s_month_start[ci] = res.month_start THEN s_month[ci] := greatest(0, s_month[ci] - res.cost); END IF;
        touched[ci] := true;
      END IF;
    ELSIF NOT e_refund[e] THEN
      -- Counted now, in the current periods (rolled forward first).
      IF s_day_start[ci] < b.day_start THEN s_day_start[ci] := b.day_start; s_day[ci] := 0; END IF;
      IF s_week_start[ci] < b.week_start THEN s_week_start[ci] := b.week_start; s_week[ci] := 0; END IF;
      IF s_month_start[ci] < b.month_start THEN s_month_start[ci] := b.month_start; s_month[ci] := 0; END IF;
      s_day[ci] := s_day[ci] + 1;
      s_week[ci] := s_week[ci] + 1;
      s_month[ci] := s_month[ci] + 1;
      touched[ci] := true;
    END IF;
    new_id := gen_random_uuid();
    x_ids := x_ids || new_id;
    x_items := x_items || e;
    IF e_reservation[e] IS NOT NULL THEN
      settled_ids := settled_ids || e_reservation[e];
      settled_by := settled_by || new_id;
    END IF;
    results[e] := jsonb_build_object('execution_id', new_id);
  END LOOP;

  FOR ci IN 1..nc LOOP
    CONTINUE WHEN NOT touched[ci];
    UPDATE command_usage cu
       SET day_start = s_day_start[ci], day_used = s_day[ci],
           week_start = s_week_start[ci], week_used = s_week[ci],
           month_start = s_month_start[ci], month_used = s_month[ci]
     WHERE cu.user_id = c_users[ci] AND cu.command_type = c_types[ci];
  END LOOP;

  IF cardinality(x_ids) > 0 THEN
    INSERT INTO command_executions (id, request_key, reservation_id, user_id, command_type, host,
      started_at, duration_ms, cpu_percent, memory_bytes, exit_code, status, recorded_at)
    SELECT x.id, e_idem[x.e], e_reservation[x.e], c_users[e_counter[x.e]], c_types[e_counter[x.e]],
           e_host[x.e], coalesce(e_started_at[x.e], ts), e_duration_ms[x.e], e_cpu[x.e],
           e_memory[x.e], e_exit[x.e], e_status[x.e], ts
      FROM unnest(x_ids, x_items) AS x(id, e);
  END IF;
  IF cardinality(settled_ids) > 0 THEN
    UPDATE command_reservations r SET settled_at = ts, execution_id = s.by
      FROM unnest(settled_ids, settled_by) AS s(id, by) WHERE r.id = s.id;
  END IF;

  -- Last, after every write: a caller answered UNAVAILABLE must not find its execution stored
  -- by a statement that outlived it (the error rolls all of it back).
  IF clock_timestamp() > entered + p_budget_ms * interval '1 millisecond' THEN
    RAISE EXCEPTION 'command_record_executions: deadline of % ms passed before the commit', p_budget_ms
      USING ERRCODE = 'query_canceled';
  END IF;
  RETURN to_jsonb(results);
END
$$;

-- Down Migration

DROP FUNCTION IF EXISTS command_record_executions(text[], text[], int[], uuid[], text[], text[], timestamptz[], double precision[], double precision[], bigint[], int[], text[], boolean[], text, int, timestamptz);
DROP FUNCTION IF EXISTS command_quota_decide(text[], text[], int[], bigint[], bigint[], bigint[], bigint[], text[], uuid[], text, int, int, timestamptz);
DROP FUNCTION IF EXISTS command_usage_lock(text[], text[]);
DROP VIEW IF EXISTS command_execution_summary_24h;
DROP FUNCTION IF EXISTS command_execution_summary(text, timestamptz, timestamptz);
DROP VIEW IF EXISTS command_usage_periods;
DROP FUNCTION IF EXISTS command_quota_bounds(text, timestamptz);
DROP TABLE IF EXISTS command_executions;
DROP TABLE IF EXISTS command_reservations;
DROP TABLE IF EXISTS command_usage;
DROP TRIGGER IF EXISTS user_tiers_notify ON user_tiers;
DROP TABLE IF EXISTS user_tiers;
DROP TABLE IF EXISTS quota_tiers;
DROP TRIGGER IF EXISTS command_quota_rules_notify ON command_quota_rules;
DROP TABLE IF EXISTS command_quota_rules;
