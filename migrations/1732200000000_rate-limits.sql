-- Up Migration

-- Rate-limit rules. The service caches them per replica and reloads on NOTIFY quota_config.
CREATE TABLE rate_limit_rules (
  name          text PRIMARY KEY,
  scope         text NOT NULL CHECK (scope IN ('ip', 'user', 'api_key', 'resource')),
  match         text NOT NULL,
  limit_count   bigint NOT NULL CHECK (limit_count > 0),
  -- NULL when the rule counts per calendar period instead.
  window_ms     bigint CHECK (window_ms > 0),
  algorithm     text NOT NULL CHECK (algorithm IN ('sliding_window', 'fixed_window', 'token_bucket')),
  period        text CHECK (period IN ('daily', 'weekly', 'monthly')),
  enabled       boolean NOT NULL DEFAULT true,
  shadow        boolean NOT NULL DEFAULT false,
  load_adaptive boolean NOT NULL DEFAULT false,
  description   text NOT NULL DEFAULT '',
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  CHECK ((window_ms IS NULL) <> (period IS NULL))
);

-- One row per (rule, key). Sliding and fixed windows keep win_start/curr/prev (O(1) per key);
-- the token bucket keeps its theoretical arrival time in tat_ms. expires_ms lets the cleanup
-- job drop rows whose state no longer matters. fillfactor leaves room for HOT updates.
CREATE TABLE rate_limit_counters (
  rule       text NOT NULL,
  key        text NOT NULL,
  win_start  bigint NOT NULL DEFAULT 0,
  curr       bigint NOT NULL DEFAULT 0,
  prev       bigint NOT NULL DEFAULT 0,
  tat_ms     double precision NOT NULL DEFAULT 0,
  expires_ms bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (rule, key)
) WITH (fillfactor = 70);

CREATE INDEX rate_limit_counters_expires ON rate_limit_counters (expires_ms);

-- First answers to requests that carried a request_id, so retries return them unchanged.
CREATE TABLE idempotency_keys (
  key        text PRIMARY KEY,
  response   jsonb NOT NULL,
  expires_at timestamptz NOT NULL
);

CREATE INDEX idempotency_keys_expires ON idempotency_keys (expires_at);

-- Start (ms since the epoch) of the calendar period containing p_now in time zone p_tz, and of
-- the next one. Periods are aligned in local time so that "daily" means the local day.
CREATE FUNCTION quota_period_bounds(p_period text, p_tz text, p_now timestamptz,
                                    OUT start_ms bigint, OUT end_ms bigint)
LANGUAGE plpgsql STABLE AS $$
DECLARE
  local_start timestamp;
  step interval;
BEGIN
  CASE p_period
    WHEN 'daily' THEN local_start := date_trunc('day', p_now AT TIME ZONE p_tz); step := interval '1 day';
    WHEN 'weekly' THEN local_start := date_trunc('week', p_now AT TIME ZONE p_tz); step := interval '1 week';
    WHEN 'monthly' THEN local_start := date_trunc('month', p_now AT TIME ZONE p_tz); step := interval '1 month';
    ELSE RAISE EXCEPTION 'unknown period %', p_period;
  END CASE;
  start_ms := floor(extract(epoch FROM (local_start AT TIME ZONE p_tz)) * 1000)::bigint;
  end_ms := floor(extract(epoch FROM ((local_start + step) AT TIME ZONE p_tz)) * 1000)::bigint;
END
$$;

-- The rate-limit decision: every applicable limit is checked and, only if none denies, all are
-- counted, in one transaction and one round trip. Rows are locked in the order given, which the
-- caller sorts by (rule, key), so concurrent decisions never deadlock. Time is the database's.
-- Returns {allowed, retry_after_ms, limits:[{rule, key, shadow, limit, remaining, window_ms,
-- reset_after_ms, exceeded}]} in the order given.
CREATE FUNCTION quota_check_limits(
  p_rules text[], p_keys text[], p_limits bigint[], p_window_ms bigint[], p_algorithms text[],
  p_periods text[], p_shadow boolean[], p_hits bigint, p_idempotency_key text, p_tz text)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  n int := coalesce(array_length(p_rules, 1), 0);
  ts timestamptz := clock_timestamp();
  now_ms double precision := extract(epoch FROM ts) * 1000;
  i int;
  c rate_limit_counters%ROWTYPE;
  w double precision;
  lim bigint;
  start_ms bigint;
  end_ms bigint;
  elapsed double precision;
  estimate double precision;
  new_tat double precision;
  ok boolean;
  allowed boolean := true;
  retry double precision := 0;
  t double precision;
  rem double precision;
  reset double precision;
  st_start bigint[] := '{}';
  st_curr bigint[] := '{}';
  st_prev bigint[] := '{}';
  st_tat double precision[] := '{}';
  st_exp bigint[] := '{}';
  out_limits jsonb := '[]'::jsonb;
  result jsonb;
BEGIN
  -- Counts may be lost in a crash (at most the last fraction of a second); decisions are not
  -- worth a disk flush each. Idempotency answers share the transaction and the same trade-off.
  PERFORM set_config('synchronous_commit', 'off', true);

  IF p_idempotency_key IS NOT NULL THEN
    -- Serialises retries of one request so that exactly one of them decides.
    PERFORM pg_advisory_xact_lock(hashtextextended(p_idempotency_key, 0));
    SELECT response INTO result FROM idempotency_keys WHERE key = p_idempotency_key AND expires_at > ts;
    IF FOUND THEN
      RETURN result || jsonb_build_object('replayed', true);
    END IF;
  END IF;

  FOR i IN 1..n LOOP
    SELECT * INTO c FROM rate_limit_counters WHERE rule = p_rules[i] AND key = p_keys[i] FOR UPDATE;
    IF NOT FOUND THEN
      INSERT INTO rate_limit_counters (rule, key) VALUES (p_rules[i], p_keys[i]) ON CONFLICT DO NOTHING;
      SELECT * INTO c FROM rate_limit_counters WHERE rule = p_rules[i] AND key = p_keys[i] FOR UPDATE;
    END IF;

    lim := p_limits[i];
    IF p_periods[i] IS NOT NULL THEN
      SELECT b.start_ms, b.end_ms INTO start_ms, end_ms FROM quota_period_bounds(p_periods[i], p_tz, ts) b;
      w := end_ms - start_ms;
    ELSE
      w := p_window_ms[i];
    END IF;

    IF p_algorithms[i] = 'token_bucket' THEN
      -- GCRA: each hit advances the theoretical arrival time by w/limit; a burst of `limit`
      -- fits in one window.
      new_tat := greatest(c.tat_ms, now_ms) + p_hits * (w / lim);
      ok := new_tat - now_ms <= w;
      IF ok THEN
        rem := floor((w - (new_tat - now_ms)) / (w / lim));
        reset := new_tat - now_ms;
        st_tat := st_tat || new_tat;
      ELSE
        rem := floor(greatest(0, w - (greatest(c.tat_ms, now_ms) - now_ms)) / (w / lim));
        reset := greatest(c.tat_ms, now_ms) - now_ms;
        t := CASE WHEN p_hits > lim THEN w ELSE new_tat - w - now_ms END;
        st_tat := st_tat || c.tat_ms;
      END IF;
      st_start := st_start || c.win_start; st_curr := st_curr || c.curr; st_prev := st_prev || c.prev;
      st_exp := st_exp || ceil(greatest(c.tat_ms, new_tat))::bigint;
    ELSE
      IF p_periods[i] IS NULL THEN
        start_ms := (floor(now_ms / w) * w)::bigint;
        end_ms := start_ms + w::bigint;
      END IF;
      -- Roll the two buckets forward to the current window.
      IF c.win_start = start_ms THEN
        NULL;
      ELSIF p_periods[i] IS NULL AND c.win_start = start_ms - w::bigint THEN
        c.prev := c.curr; c.curr := 0;
      ELSE
        c.prev := 0; c.curr := 0;
      END IF;
      elapsed := now_ms - start_ms;
      IF p_algorithms[i] = 'fixed_window' OR p_periods[i] IS NOT NULL THEN
        estimate := c.curr;
        reset := end_ms - now_ms;
        t := CASE WHEN p_hits > lim THEN reset + w ELSE reset END;
      ELSE
        estimate := c.prev * (w - elapsed) / w + c.curr;
        reset := CASE WHEN c.curr + p_hits > 0 THEN end_ms + w - now_ms ELSE end_ms - now_ms END;
        IF p_hits > lim THEN
          t := 2 * w;
        ELSIF c.curr + p_hits <= lim THEN
          -- Wait until enough of the previous window has slid out.
          t := greatest(0, w - elapsed - (lim - c.curr - p_hits) * w / nullif(c.prev, 0));
        ELSE
          -- Wait for the next window, then until enough of this one has slid out.
          t := (end_ms - now_ms) + greatest(0, w - (lim - p_hits) * w / c.curr);
        END IF;
      END IF;
      ok := estimate + p_hits <= lim;
      rem := CASE WHEN ok THEN lim - estimate - p_hits ELSE greatest(0, lim - estimate) END;
      st_start := st_start || start_ms;
      st_curr := st_curr || (c.curr + CASE WHEN ok OR p_shadow[i] THEN p_hits ELSE 0 END);
      st_prev := st_prev || c.prev;
      st_tat := st_tat || c.tat_ms;
      st_exp := st_exp || (end_ms + w::bigint);
    END IF;

    IF NOT ok AND NOT p_shadow[i] THEN
      allowed := false;
      retry := greatest(retry, coalesce(t, w));
    END IF;
    out_limits := out_limits || jsonb_build_object(
      'rule', p_rules[i], 'key', p_keys[i], 'shadow', p_shadow[i], 'limit', lim, 'remaining', greatest(0, floor(rem))::bigint, 'window_ms', w::bigint,
      'reset_after_ms', ceil(greatest(0, reset))::bigint, 'exceeded', NOT ok);
  END LOOP;

  IF allowed THEN
    FOR i IN 1..n LOOP
      UPDATE rate_limit_counters
         SET win_start = st_start[i], curr = st_curr[i], prev = st_prev[i], tat_ms = st_tat[i],
             expires_ms = st_exp[i]
       WHERE rule = p_rules[i] AND key = p_keys[i];
    END LOOP;
  END IF;

  result := jsonb_build_object('allowed', allowed, 'retry_after_ms', CASE WHEN allowed THEN 0 ELSE ceil(retry)::bigint END,
                               'limits', out_limits);
  IF p_idempotency_key IS NOT NULL THEN
    INSERT INTO idempotency_keys (key, response, expires_at)
    VALUES (p_idempotency_key, result, ts + interval '24 hours')
    ON CONFLICT (key) DO UPDATE SET response = EXCLUDED.response, expires_at = EXCLUDED.expires_at;
  END IF;
  RETURN result;
END
$$;

-- Admin writes NOTIFY here so every replica reloads its caches; the payload names what changed.
CREATE FUNCTION quota_notify_config() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('quota_config', TG_TABLE_NAME);
  RETURN NULL;
END
$$;

CREATE TRIGGER rate_limit_rules_notify
  AFTER INSERT OR UPDATE OR DELETE ON rate_limit_rules
  FOR EACH STATEMENT EXECUTE FUNCTION quota_notify_config();

-- Down Migration

DROP TRIGGER IF EXISTS rate_limit_rules_notify ON rate_limit_rules;
DROP FUNCTION IF EXISTS quota_notify_config();
DROP FUNCTION IF EXISTS quota_check_limits(text[], text[], bigint[], bigint[], text[], text[], boolean[], bigint, text, text);
DROP FUNCTION IF EXISTS quota_period_bounds(text, text, timestamptz);
DROP TABLE IF EXISTS idempotency_keys;
DROP TABLE IF EXISTS rate_limit_counters;
DROP TABLE IF EXISTS rate_limit_rules;
