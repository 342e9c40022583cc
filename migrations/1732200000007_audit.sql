-- Up Migration

-- Denials, written in batches off the hot path. One row stands for `count` identical denials
-- (same source, rule, scope, key and caller fields, within one hour) between first_at and
-- last_at, as recorded by one replica in one flush. A row whose buffer overflowed keeps only
-- source, rule and scope (key ''): its denials are counted, their details are not kept. API keys
-- appear only as 12 characters of the digest of their keyed hash, never raw. Times are the
-- database clock's (each replica stamps its decisions with its measured offset to it).
CREATE TABLE violations (
  id             bigserial PRIMARY KEY,
  first_at       timestamptz NOT NULL,
  last_at        timestamptz NOT NULL,
  count          bigint NOT NULL CHECK (count > 0),
  source         text NOT NULL CHECK (source IN ('check_limit', 'command_quota')),
  rule           text NOT NULL,
  scope          text NOT NULL,
  key            text NOT NULL,
  ip             text,
  user_id        text,
  api_key_prefix text,
  path           text,
  user_agent     text,
  host           text,
  reason         text,
  CHECK (first_at <= last_at)
);

CREATE INDEX violations_last_at ON violations (last_at);
CREATE INDEX violations_rule_last_at ON violations (rule, last_at);
CREATE INDEX violations_key_last_at ON violations (scope, key, last_at);
CREATE INDEX violations_user_last_at ON violations (user_id, last_at) WHERE user_id IS NOT NULL;
CREATE INDEX violations_ip_last_at ON violations (ip, last_at) WHERE ip IS NOT NULL;

-- Which identities (user:<id>, api_key:<hash prefix>) an IP presented, and when last. Replicas
-- write only IPs they saw with more than one identity, so one user behind one IP costs nothing.
CREATE TABLE identity_sightings (
  ip        text NOT NULL,
  identity  text NOT NULL,
  last_seen timestamptz NOT NULL,
  PRIMARY KEY (ip, identity)
);

CREATE INDEX identity_sightings_last_seen ON identity_sightings (last_seen);

-- Attack patterns found by the cluster-wide detection task: a key denied more than a threshold
-- in a window (repeated_denials), or an IP presenting many identities (identity_spread).
-- blocked_until set: every replica denies the key until then (database clock).
CREATE TABLE attack_flags (
  kind          text NOT NULL CHECK (kind IN ('repeated_denials', 'identity_spread')),
  scope         text NOT NULL,
  key           text NOT NULL,
  count         bigint NOT NULL,
  first_seen    timestamptz NOT NULL,
  last_seen     timestamptz NOT NULL,
  blocked_until timestamptz,
  PRIMARY KEY (kind, scope, key)
);

CREATE INDEX attack_flags_last_seen ON attack_flags (last_seen);

CREATE TRIGGER attack_flags_notify
  AFTER INSERT OR UPDATE OR DELETE ON attack_flags
  FOR EACH STATEMENT EXECUTE FUNCTION quota_notify_config();

-- Exact decision counts per hour: kind 'rule' (a rate-limit rule, or '*' for every CheckLimit
-- call) or 'command' (a command type, or '*' for every CheckCommandQuota call). Replicas add
-- their counts in batches.
CREATE TABLE decision_stats (
  hour          timestamptz NOT NULL,
  kind          text NOT NULL CHECK (kind IN ('rule', 'command')),
  name          text NOT NULL,
  allowed       bigint NOT NULL DEFAULT 0 CHECK (allowed >= 0),
  denied        bigint NOT NULL DEFAULT 0 CHECK (denied >= 0),
  shadow_denied bigint NOT NULL DEFAULT 0 CHECK (shadow_denied >= 0),
  degraded      bigint NOT NULL DEFAULT 0 CHECK (degraded >= 0),
  PRIMARY KEY (hour, kind, name)
);

-- Load history rolled up per host and hour, kept longer than the raw samples.
CREATE TABLE load_hourly (
  host            text NOT NULL,
  hour            timestamptz NOT NULL,
  samples         bigint NOT NULL CHECK (samples > 0),
  cpu_avg         double precision NOT NULL,
  cpu_max         double precision NOT NULL,
  memory_avg      double precision NOT NULL,
  memory_max      double precision NOT NULL,
  disk_avg        double precision NOT NULL,
  disk_max        double precision NOT NULL,
  load_avg_1m_avg double precision NOT NULL,
  load_avg_1m_max double precision NOT NULL,
  PRIMARY KEY (host, hour)
);

CREATE INDEX load_hourly_hour ON load_hourly (hour);

-- Batches of violations and statistics already written, by the id their replica gave them: a
-- batch whose commit the replica could not confirm (a timeout, a lost connection) is sent again
-- under its id, and skipped if it had committed after all. Kept a day (retention-cleanup).
CREATE TABLE audit_batches (
  id         uuid PRIMARY KEY,
  written_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX audit_batches_written_at ON audit_batches (written_at);

-- When each cluster-wide task last ran, on any replica: a replica whose turn comes less than
-- the task's interval after another's run skips it, so that N replicas run it once per
-- interval, not N times.
CREATE TABLE task_runs (
  name        text PRIMARY KEY,
  last_run_at timestamptz NOT NULL,
  replica     text NOT NULL
);

-- Down Migration

DROP TABLE IF EXISTS task_runs;
DROP TABLE IF EXISTS audit_batches;
DROP TABLE IF EXISTS load_hourly;
DROP TABLE IF EXISTS decision_stats;
DROP TRIGGER IF EXISTS attack_flags_notify ON attack_flags;
DROP TABLE IF EXISTS attack_flags;
DROP TABLE IF EXISTS identity_sightings;
DROP TABLE IF EXISTS violations;
