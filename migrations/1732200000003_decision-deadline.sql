-- Up Migration

-- quota_decide gets an absolute deadline (a budget from its entry) instead of a bound on each
-- lock wait, and an optional explicit time for tests. Everything else is as before.
DROP FUNCTION quota_decide(text[], text[], int[], bigint[], bigint[], text[], text[], boolean[], int[], int[], bigint[], text[], text, int);

-- Rate-limit decisions, several per call: each decision checks every applicable limit and, only
-- if none that is not a shadow denies, counts them all (all-or-nothing per decision). Batching
-- is what lets a hot counter go past one durable update per commit: the decisions of a batch
-- share one statement, one lock per counter and one commit. Time is the database's.
--
-- Counters (c_*) are distinct and locked in the order given, which every replica produces the
-- same way, so concurrent batches never deadlock. Items (i_*) are the limits of the decisions:
-- decision d owns items d_first[d] .. d_first[d] + d_count[d] - 1; i_counter points into c_*.
-- Returns a jsonb array with, per decision, {allowed, retry_after_ms, replayed?, limits:[{rule,
-- key, shadow, limit, remaining, window_ms, reset_after_ms, exceeded}]}.
--
-- p_budget_ms is the time the batch has from its entry here: its earliest caller is answered
-- with the failure mode once it has passed, so a batch still undecided by then raises
-- query_canceled (57014) before it writes anything, and counts nothing. p_now is the time the
-- decision is made at; NULL (what the service passes) is the database clock after the locks.
CREATE FUNCTION quota_decide(
  c_rules text[], c_keys text[],
  i_counter int[], i_limit bigint[], i_window_ms bigint[], i_algorithm text[], i_period text[],
  i_shadow boolean[],
  d_first int[], d_count int[], d_hits bigint[], d_idem text[], p_tz text, p_budget_ms int,
  p_now timestamptz DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  entered timestamptz := clock_timestamp();
  nc int := coalesce(array_length(c_rules, 1), 0);
  nd int := coalesce(array_length(d_hits, 1), 0);
  ts timestamptz := coalesce(p_now, clock_timestamp());
  now_ms double precision := extract(epoch FROM ts) * 1000;
  s_start bigint[];
  s_curr bigint[];
  s_prev bigint[];
  s_tat double precision[];
  s_exp bigint[];
  touched boolean[] := array_fill(false, ARRAY[greatest(nc, 1)]);
  n_start bigint[];
  n_curr bigint[];
  n_prev bigint[];
  n_tat double precision[];
  n_exp bigint[];
  -- Per item of a decision: what remains if the decision counts nothing (it is denied).
  n_base bigint[];
  results jsonb[] := array_fill(NULL::jsonb, ARRAY[greatest(nd, 1)]);
  idem_keys text[] := '{}';
  idem_answers jsonb[] := '{}';
  d int;
  j int;
  ci int;
  hits bigint;
  lim bigint;
  w double precision;
  start_ms bigint;
  end_ms bigint;
  cur_start bigint;
  cur_curr bigint;
  cur_prev bigint;
  cur_tat double precision;
  cur_exp bigint;
  elapsed double precision;
  estimate double precision;
  new_tat double precision;
  ok boolean;
  allowed boolean;
  retry double precision;
  t double precision;
  rem double precision;
  reset double precision;
  out_limits jsonb;
  stored jsonb;
BEGIN
  -- Counts may be lost in a crash (at most the last fraction of a second); a decision is not
  -- worth a disk flush each. Idempotency answers share the transaction and the trade-off.
  PERFORM set_config('synchronous_commit', 'off', true);
  -- lock_timeout 0 would mean no bound at all.
  IF p_budget_ms IS NULL OR p_budget_ms < 1 THEN
    RAISE EXCEPTION 'quota_decide: a budget of % ms leaves no time to decide', p_budget_ms
      USING ERRCODE = 'query_canceled';
  END IF;
  -- A caller gives up after its deadline; a decision still waiting for a lock by then must not
  -- go on to count what the caller was told was not decided.
  PERFORM set_config('lock_timeout', p_budget_ms || 'ms', true);

  IF EXISTS (SELECT 1 FROM unnest(d_idem) k WHERE k IS NOT NULL) THEN
    -- Serialises concurrent retries of one request so that exactly one of them decides. Taken
    -- in key order, and always before any counter lock, so these cannot deadlock either.
    PERFORM pg_advisory_xact_lock(hashtextextended(k, 0))
       FROM (SELECT DISTINCT k FROM unnest(d_idem) k WHERE k IS NOT NULL ORDER BY k) s;
    FOR d IN 1..nd LOOP
      IF d_idem[d] IS NOT NULL THEN
        SELECT response INTO stored FROM idempotency_keys WHERE key = d_idem[d] AND expires_at > ts;
        IF FOUND THEN
          results[d] := stored || '{"replayed": true}'::jsonb;
        END IF;
      END IF;
    END LOOP;
  END IF;

  -- Lock every counter, in the order given, creating missing ones, and read its state. A row
  -- lock, not a new row version: the one write per counter comes at the end.
  s_start := array_fill(0::bigint, ARRAY[greatest(nc, 1)]);
  s_curr := s_start; s_prev := s_start; s_exp := s_start;
  s_tat := array_fill(0::double precision, ARRAY[greatest(nc, 1)]);
  FOR ci IN 1..nc LOOP
    SELECT c.win_start, c.curr, c.prev, c.tat_ms, c.expires_ms
      INTO cur_start, cur_curr, cur_prev, cur_tat, cur_exp
      FROM rate_limit_counters c WHERE c.rule = c_rules[ci] AND c.key = c_keys[ci] FOR UPDATE;
    IF NOT FOUND THEN
      INSERT INTO rate_limit_counters (rule, key) VALUES (c_rules[ci], c_keys[ci]) ON CONFLICT DO NOTHING;
      SELECT c.win_start, c.curr, c.prev, c.tat_ms, c.expires_ms
        INTO cur_start, cur_curr, cur_prev, cur_tat, cur_exp
        FROM rate_limit_counters c WHERE c.rule = c_rules[ci] AND c.key = c_keys[ci] FOR UPDATE;
    END IF;
    s_start[ci] := cur_start; s_curr[ci] := cur_curr; s_prev[ci] := cur_prev;
    s_tat[ci] := cur_tat; s_exp[ci] := cur_exp;
  END LOOP;
  -- The time of the decision is after the locks: a batch that waited for another must not
  -- count in a window that the other has already moved past.
  ts := coalesce(p_now, clock_timestamp());
  now_ms := extract(epoch FROM ts) * 1000;

  FOR d IN 1..nd LOOP
    CONTINUE WHEN results[d] IS NOT NULL;
    hits := d_hits[d];
    allowed := true;
    retry := 0;
    out_limits := '[]'::jsonb;
    n_start := '{}'; n_curr := '{}'; n_prev := '{}'; n_tat := '{}'; n_exp := '{}'; n_base := '{}';

    FOR j IN d_first[d] .. d_first[d] + d_count[d] - 1 LOOP
      ci := i_counter[j];
      lim := i_limit[j];
      cur_start := s_start[ci]; cur_curr := s_curr[ci]; cur_prev := s_prev[ci]; cur_tat := s_tat[ci];
      t := NULL;
      IF i_period[j] IS NOT NULL THEN
        SELECT b.start_ms, b.end_ms INTO start_ms, end_ms FROM quota_period_bounds(i_period[j], p_tz, ts) b;
        w := end_ms - start_ms;
      ELSE
        w := i_window_ms[j];
        start_ms := (floor(now_ms / w) * w)::bigint;
        end_ms := start_ms + w::bigint;
      END IF;

      IF i_algorithm[j] = 'token_bucket' THEN
        -- GCRA: each hit moves the theoretical arrival time w/limit later; a burst of `limit`
        -- fits in one window.
        n_base := n_base || CASE WHEN lim > 0
          THEN floor(greatest(0, w - (greatest(cur_tat, now_ms) - now_ms)) / (w / lim))::bigint ELSE 0 END;
        new_tat := greatest(cur_tat, now_ms) + hits * (w / greatest(lim, 1));
        ok := lim > 0 AND new_tat - now_ms <= w;
        IF ok THEN
          rem := floor((w - (new_tat - now_ms)) / (w / lim));
          reset := new_tat - now_ms;
          cur_tat := new_tat;
        ELSE
          rem := CASE WHEN lim > 0 THEN floor(greatest(0, w - (greatest(cur_tat, now_ms) - now_ms)) / (w / lim)) ELSE 0 END;
          reset := greatest(cur_tat, now_ms) - now_ms;
          t := CASE WHEN hits > lim THEN w ELSE new_tat - w - now_ms END;
          IF i_shadow[j] THEN cur_tat := new_tat; END IF;
        END IF;
        n_exp := n_exp || ceil(greatest(cur_tat, now_ms))::bigint;
      ELSE
        -- Roll the two buckets forward to the current window, never back: a stored window
        -- newer than this clock reading is the current one.
        IF cur_start >= start_ms THEN
          start_ms := cur_start;
          end_ms := CASE WHEN i_period[j] IS NULL THEN start_ms + w::bigint ELSE end_ms END;
        ELSIF i_period[j] IS NULL AND cur_start = start_ms - w::bigint THEN
          cur_prev := cur_curr; cur_curr := 0;
        ELSE
          cur_prev := 0; cur_curr := 0;
        END IF;
        cur_start := start_ms;
        elapsed := greatest(0, now_ms - start_ms);
        IF i_algorithm[j] = 'fixed_window' OR i_period[j] IS NOT NULL THEN
          estimate := cur_curr;
          reset := end_ms - now_ms;
          t := CASE WHEN hits > lim THEN reset + w ELSE reset END;
        ELSE
          estimate := cur_prev * (w - elapsed) / w + cur_curr;
          IF hits > lim THEN
            t := 2 * w;
          ELSIF cur_curr + hits <= lim THEN
            -- Wait until enough of the previous window has slid out.
            t := greatest(0, w - elapsed - (lim - cur_curr - hits) * w / nullif(cur_prev, 0));
          ELSE
            -- Wait for the next window, then until enough of this one has slid out.
            t := (end_ms - now_ms) + greatest(0, w - (lim - hits) * w / cur_curr);
          END IF;
        END IF;
        ok := estimate + hits <= lim;
        rem := CASE WHEN ok THEN lim - estimate - hits ELSE greatest(0, lim - estimate) END;
        n_base := n_base || greatest(0, floor(lim - estimate))::bigint;
        IF ok OR i_shadow[j] THEN cur_curr := cur_curr + hits; END IF;
        IF i_algorithm[j] = 'sliding_window' AND i_period[j] IS NULL THEN
          -- What is counted drains: this window's bucket by the end of the next window, the
          -- previous window's bucket by the end of this one.
          reset := CASE WHEN cur_curr > 0 THEN end_ms + w - now_ms
                        WHEN cur_prev > 0 THEN end_ms - now_ms ELSE 0 END;
        END IF;
        n_exp := n_exp || (end_ms + w::bigint);
      END IF;
      n_start := n_start || cur_start; n_curr := n_curr || cur_curr; n_prev := n_prev || cur_prev;
      n_tat := n_tat || cur_tat;

      IF NOT ok AND NOT i_shadow[j] THEN
        allowed := false;
        retry := greatest(retry, coalesce(t, w));
      END IF;
      out_limits := out_limits || jsonb_build_object(
        'rule', c_rules[ci], 'key', c_keys[ci], 'shadow', i_shadow[j], 'limit', lim,
        'remaining', greatest(0, floor(rem))::bigint, 'window_ms', w::bigint,
        'reset_after_ms', ceil(greatest(0, reset))::bigint, 'exceeded', NOT ok);
    END LOOP;

    IF NOT allowed THEN
      -- A denied call counts nothing, so no limit may report it as counted.
      FOR j IN 1 .. d_count[d] LOOP
        out_limits := jsonb_set(out_limits, ARRAY[(j - 1)::text, 'remaining'], to_jsonb(n_base[j]));
      END LOOP;
    END IF;

    IF allowed THEN
      FOR j IN 1 .. d_count[d] LOOP
        ci := i_counter[d_first[d] + j - 1];
        s_start[ci] := n_start[j]; s_curr[ci] := n_curr[j]; s_prev[ci] := n_prev[j];
        s_tat[ci] := n_tat[j]; s_exp[ci] := greatest(s_exp[ci], n_exp[j]);
        touched[ci] := true;
      END LOOP;
    END IF;

    results[d] := jsonb_build_object('allowed', allowed,
      'retry_after_ms', CASE WHEN allowed THEN 0 ELSE ceil(retry)::bigint END, 'limits', out_limits);
    IF d_idem[d] IS NOT NULL THEN
      idem_keys := idem_keys || d_idem[d];
      idem_answers := idem_answers || results[d];
    END IF;
  END LOOP;

  -- Several lock waits, each within lock_timeout, may add up past the budget: the caller may
  -- have been answered already, so nothing may be written. The error rolls everything back.
  IF clock_timestamp() > entered + p_budget_ms * interval '1 millisecond' THEN
    RAISE EXCEPTION 'quota_decide: deadline of % ms passed before counting', p_budget_ms
      USING ERRCODE = 'query_canceled';
  END IF;

  -- One primary-key update per changed counter: a join against unnest() would be planned for
  -- unknown row counts and may scan the whole table.
  FOR ci IN 1..nc LOOP
    CONTINUE WHEN NOT touched[ci];
    UPDATE rate_limit_counters
       SET win_start = s_start[ci], curr = s_curr[ci], prev = s_prev[ci], tat_ms = s_tat[ci],
           expires_ms = s_exp[ci]
     WHERE rule = c_rules[ci] AND key = c_keys[ci];
  END LOOP;

  IF array_length(idem_keys, 1) > 0 THEN
    INSERT INTO idempotency_keys (key, response, expires_at)
    SELECT k, a, ts + interval '24 hours' FROM unnest(idem_keys, idem_answers) AS u(k, a)
    ON CONFLICT (key) DO UPDATE SET response = EXCLUDED.response, expires_at = EXCLUDED.expires_at;
  END IF;

  RETURN to_jsonb(results);
END
$$;

-- Down Migration

DROP FUNCTION IF EXISTS quota_decide(text[], text[], int[], bigint[], bigint[], text[], text[], boolean[], int[], int[], bigint[], text[], text, int, timestamptz);

-- Rate-limit decisions, several per call: each decision checks every applicable limit and, only
-- if none that is not a shadow denies, counts them all (all-or-nothing per decision). Batching
-- is what lets a hot counter go past one durable update per commit: the decisions of a batch
-- share one statement, one lock per counter and one commit. Time is the database's.
--
-- Counters (c_*) are distinct and locked in the order given, which every replica produces the
-- same way, so concurrent batches never deadlock. Items (i_*) are the limits of the decisions:
-- decision d owns items d_first[d] .. d_first[d] + d_count[d] - 1; i_counter points into c_*.
-- Returns a jsonb array with, per decision, {allowed, retry_after_ms, replayed?, limits:[{rule,
-- key, shadow, limit, remaining, window_ms, reset_after_ms, exceeded}]}.
CREATE FUNCTION quota_decide(
  c_rules text[], c_keys text[],
  i_counter int[], i_limit bigint[], i_window_ms bigint[], i_algorithm text[], i_period text[],
  i_shadow boolean[],
  d_first int[], d_count int[], d_hits bigint[], d_idem text[], p_tz text, p_lock_timeout_ms int)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  nc int := coalesce(array_length(c_rules, 1), 0);
  nd int := coalesce(array_length(d_hits, 1), 0);
  ts timestamptz := clock_timestamp();
  now_ms double precision := extract(epoch FROM ts) * 1000;
  s_start bigint[];
  s_curr bigint[];
  s_prev bigint[];
  s_tat double precision[];
  s_exp bigint[];
  touched boolean[] := array_fill(false, ARRAY[greatest(nc, 1)]);
  n_start bigint[];
  n_curr bigint[];
  n_prev bigint[];
  n_tat double precision[];
  n_exp bigint[];
  -- Per item of a decision: what remains if the decision counts nothing (it is denied).
  n_base bigint[];
  results jsonb[] := array_fill(NULL::jsonb, ARRAY[greatest(nd, 1)]);
  idem_keys text[] := '{}';
  idem_answers jsonb[] := '{}';
  d int;
  j int;
  ci int;
  hits bigint;
  lim bigint;
  w double precision;
  start_ms bigint;
  end_ms bigint;
  cur_start bigint;
  cur_curr bigint;
  cur_prev bigint;
  cur_tat double precision;
  cur_exp bigint;
  elapsed double precision;
  estimate double precision;
  new_tat double precision;
  ok boolean;
  allowed boolean;
  retry double precision;
  t double precision;
  rem double precision;
  reset double precision;
  out_limits jsonb;
  stored jsonb;
BEGIN
  -- Counts may be lost in a crash (at most the last fraction of a second); a decision is not
  -- worth a disk flush each. Idempotency answers share the transaction and the trade-off.
  PERFORM set_config('synchronous_commit', 'off', true);
  -- A caller gives up after its timeout; a decision still waiting for locks by then must not
  -- go on to count what the caller was told was not decided.
  PERFORM set_config('lock_timeout', p_lock_timeout_ms || 'ms', true);

  IF EXISTS (SELECT 1 FROM unnest(d_idem) k WHERE k IS NOT NULL) THEN
    -- Serialises concurrent retries of one request so that exactly one of them decides. Taken
    -- in key order, and always before any counter lock, so these cannot deadlock either.
    PERFORM pg_advisory_xact_lock(hashtextextended(k, 0))
       FROM (SELECT DISTINCT k FROM unnest(d_idem) k WHERE k IS NOT NULL ORDER BY k) s;
    FOR d IN 1..nd LOOP
      IF d_idem[d] IS NOT NULL THEN
        SELECT response INTO stored FROM idempotency_keys WHERE key = d_idem[d] AND expires_at > ts;
        IF FOUND THEN
          results[d] := stored || '{"replayed": true}'::jsonb;
        END IF;
      END IF;
    END LOOP;
  END IF;

  -- Lock every counter, in the order given, creating missing ones, and read its state. A row
  -- lock, not a new row version: the one write per counter comes at the end.
  s_start := array_fill(0::bigint, ARRAY[greatest(nc, 1)]);
  s_curr := s_start; s_prev := s_start; s_exp := s_start;
  s_tat := array_fill(0::double precision, ARRAY[greatest(nc, 1)]);
  FOR ci IN 1..nc LOOP
    SELECT c.win_start, c.curr, c.prev, c.tat_ms, c.expires_ms
      INTO cur_start, cur_curr, cur_prev, cur_tat, cur_exp
      FROM rate_limit_counters c WHERE c.rule = c_rules[ci] AND c.key = c_keys[ci] FOR UPDATE;
    IF NOT FOUND THEN
      INSERT INTO rate_limit_counters (rule, key) VALUES (c_rules[ci], c_keys[ci]) ON CONFLICT DO NOTHING;
      SELECT c.win_start, c.curr, c.prev, c.tat_ms, c.expires_ms
        INTO cur_start, cur_curr, cur_prev, cur_tat, cur_exp
        FROM rate_limit_counters c WHERE c.rule = c_rules[ci] AND c.key = c_keys[ci] FOR UPDATE;
    END IF;
    s_start[ci] := cur_start; s_curr[ci] := cur_curr; s_prev[ci] := cur_prev;
    s_tat[ci] := cur_tat; s_exp[ci] := cur_exp;
  END LOOP;
  -- The time of the decision is after the locks: a batch that waited for another must not
  -- count in a window that the other has already moved past.
  ts := clock_timestamp();
  now_ms := extract(epoch FROM ts) * 1000;

  FOR d IN 1..nd LOOP
    CONTINUE WHEN results[d] IS NOT NULL;
    hits := d_hits[d];
    allowed := true;
    retry := 0;
    out_limits := '[]'::jsonb;
    n_start := '{}'; n_curr := '{}'; n_prev := '{}'; n_tat := '{}'; n_exp := '{}'; n_base := '{}';

    FOR j IN d_first[d] .. d_first[d] + d_count[d] - 1 LOOP
      ci := i_counter[j];
      lim := i_limit[j];
      cur_start := s_start[ci]; cur_curr := s_curr[ci]; cur_prev := s_prev[ci]; cur_tat := s_tat[ci];
      t := NULL;
      IF i_period[j] IS NOT NULL THEN
        SELECT b.start_ms, b.end_ms INTO start_ms, end_ms FROM quota_period_bounds(i_period[j], p_tz, ts) b;
        w := end_ms - start_ms;
      ELSE
        w := i_window_ms[j];
        start_ms := (floor(now_ms / w) * w)::bigint;
        end_ms := start_ms + w::bigint;
      END IF;

      IF i_algorithm[j] = 'token_bucket' THEN
        -- GCRA: each hit moves the theoretical arrival time w/limit later; a burst of `limit`
        -- fits in one window.
        n_base := n_base || CASE WHEN lim > 0
          THEN floor(greatest(0, w - (greatest(cur_tat, now_ms) - now_ms)) / (w / lim))::bigint ELSE 0 END;
        new_tat := greatest(cur_tat, now_ms) + hits * (w / greatest(lim, 1));
        ok := lim > 0 AND new_tat - now_ms <= w;
        IF ok THEN
          rem := floor((w - (new_tat - now_ms)) / (w / lim));
          reset := new_tat - now_ms;
          cur_tat := new_tat;
        ELSE
          rem := CASE WHEN lim > 0 THEN floor(greatest(0, w - (greatest(cur_tat, now_ms) - now_ms)) / (w / lim)) ELSE 0 END;
          reset := greatest(cur_tat, now_ms) - now_ms;
          t := CASE WHEN hits > lim THEN w ELSE new_tat - w - now_ms END;
          IF i_shadow[j] THEN cur_tat := new_tat; END IF;
        END IF;
        n_exp := n_exp || ceil(greatest(cur_tat, now_ms))::bigint;
      ELSE
        -- Roll the two buckets forward to the current window, never back: a stored window
        -- newer than this clock reading is the current one.
        IF cur_start >= start_ms THEN
          start_ms := cur_start;
          end_ms := CASE WHEN i_period[j] IS NULL THEN start_ms + w::bigint ELSE end_ms END;
        ELSIF i_period[j] IS NULL AND cur_start = start_ms - w::bigint THEN
          cur_prev := cur_curr; cur_curr := 0;
        ELSE
          cur_prev := 0; cur_curr := 0;
        END IF;
        cur_start := start_ms;
        elapsed := greatest(0, now_ms - start_ms);
        IF i_algorithm[j] = 'fixed_window' OR i_period[j] IS NOT NULL THEN
          estimate := cur_curr;
          reset := end_ms - now_ms;
          t := CASE WHEN hits > lim THEN reset + w ELSE reset END;
        ELSE
          estimate := cur_prev * (w - elapsed) / w + cur_curr;
          IF hits > lim THEN
            t := 2 * w;
          ELSIF cur_curr + hits <= lim THEN
            -- Wait until enough of the previous window has slid out.
            t := greatest(0, w - elapsed - (lim - cur_curr - hits) * w / nullif(cur_prev, 0));
          ELSE
            -- Wait for the next window, then until enough of this one has slid out.
            t := (end_ms - now_ms) + greatest(0, w - (lim - hits) * w / cur_curr);
          END IF;
        END IF;
        ok := estimate + hits <= lim;
        rem := CASE WHEN ok THEN lim - estimate - hits ELSE greatest(0, lim - estimate) END;
        n_base := n_base || greatest(0, floor(lim - estimate))::bigint;
        IF ok OR i_shadow[j] THEN cur_curr := cur_curr + hits; END IF;
        IF i_algorithm[j] = 'sliding_window' AND i_period[j] IS NULL THEN
          -- What is counted drains: this window's bucket by the end of the next window, the
          -- previous window's bucket by the end of this one.
          reset := CASE WHEN cur_curr > 0 THEN end_ms + w - now_ms
                        WHEN cur_prev > 0 THEN end_ms - now_ms ELSE 0 END;
        END IF;
        n_exp := n_exp || (end_ms + w::bigint);
      END IF;
      n_start := n_start || cur_start; n_curr := n_curr || cur_curr; n_prev := n_prev || cur_prev;
      n_tat := n_tat || cur_tat;

      IF NOT ok AND NOT i_shadow[j] THEN
        allowed := false;
        retry := greatest(retry, coalesce(t, w));
      END IF;
      out_limits := out_limits || jsonb_build_object(
        'rule', c_rules[ci], 'key', c_keys[ci], 'shadow', i_shadow[j], 'limit', lim,
        'remaining', greatest(0, floor(rem))::bigint, 'window_ms', w::bigint,
        'reset_after_ms', ceil(greatest(0, reset))::bigint, 'exceeded', NOT ok);
    END LOOP;

    IF NOT allowed THEN
      -- A denied call counts nothing, so no limit may report it as counted.
      FOR j IN 1 .. d_count[d] LOOP
        out_limits := jsonb_set(out_limits, ARRAY[(j - 1)::text, 'remaining'], to_jsonb(n_base[j]));
      END LOOP;
    END IF;

    IF allowed THEN
      FOR j IN 1 .. d_count[d] LOOP
        ci := i_counter[d_first[d] + j - 1];
        s_start[ci] := n_start[j]; s_curr[ci] := n_curr[j]; s_prev[ci] := n_prev[j];
        s_tat[ci] := n_tat[j]; s_exp[ci] := greatest(s_exp[ci], n_exp[j]);
        touched[ci] := true;
      END LOOP;
    END IF;

    results[d] := jsonb_build_object('allowed', allowed,
      'retry_after_ms', CASE WHEN allowed THEN 0 ELSE ceil(retry)::bigint END, 'limits', out_limits);
    IF d_idem[d] IS NOT NULL THEN
      idem_keys := idem_keys || d_idem[d];
      idem_answers := idem_answers || results[d];
    END IF;
  END LOOP;

  -- One primary-key update per changed counter: a join against unnest() would be planned for
  -- unknown row counts and may scan the whole table.
  FOR ci IN 1..nc LOOP
    CONTINUE WHEN NOT touched[ci];
    UPDATE rate_limit_counters
       SET win_start = s_start[ci], curr = s_curr[ci], prev = s_prev[ci], tat_ms = s_tat[ci],
           expires_ms = s_exp[ci]
     WHERE rule = c_rules[ci] AND key = c_keys[ci];
  END LOOP;

  IF array_length(idem_keys, 1) > 0 THEN
    INSERT INTO idempotency_keys (key, response, expires_at)
    SELECT k, a, ts + interval '24 hours' FROM unnest(idem_keys, idem_answers) AS u(k, a)
    ON CONFLICT (key) DO UPDATE SET response = EXCLUDED.response, expires_at = EXCLUDED.expires_at;
  END IF;

  RETURN to_jsonb(results);
END
$$;
