-- Up Migration

-- Latest snapshot per host: every replica writes its own samples and the executors' reports
-- here and NOTIFYs quota_load with the host name (payloads are limited to 8,000 bytes, so the
-- figures are read from this table). updated_at is the database clock at the write, which is
-- what staleness is measured against, so hosts' clocks never need to agree.
CREATE TABLE host_load (
  host                     text PRIMARY KEY,
  at                       timestamptz NOT NULL,
  cpu_percent              double precision NOT NULL,
  memory_percent           double precision NOT NULL,
  disk_percent             double precision NOT NULL,
  disk_read_bytes_per_sec  double precision NOT NULL,
  disk_write_bytes_per_sec double precision NOT NULL,
  net_rx_bytes_per_sec     double precision NOT NULL,
  net_tx_bytes_per_sec     double precision NOT NULL,
  load_avg_1m              double precision NOT NULL,
  throttle_factor          double precision NOT NULL,
  updated_at               timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX host_load_updated_at ON host_load (updated_at);

-- Thresholds set by AdminService.SetThrottleThresholds; no row means the env defaults.
CREATE TABLE throttle_thresholds (
  id         boolean PRIMARY KEY DEFAULT true CHECK (id),
  slight     double precision NOT NULL,
  moderate   double precision NOT NULL,
  heavy      double precision NOT NULL,
  critical   double precision NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  CHECK (0 <= slight AND slight < moderate AND moderate < heavy AND heavy < critical AND critical <= 100)
);

CREATE TRIGGER throttle_thresholds_notify
  AFTER INSERT OR UPDATE OR DELETE ON throttle_thresholds
  FOR EACH STATEMENT EXECUTE FUNCTION quota_notify_config();

-- Every change of a host's factor, recorded once: by the replica that wrote the snapshot.
CREATE TABLE throttle_events (
  id              bigserial PRIMARY KEY,
  host            text NOT NULL,
  at              timestamptz NOT NULL DEFAULT clock_timestamp(),
  previous_factor double precision NOT NULL,
  factor          double precision NOT NULL,
  cpu_percent     double precision NOT NULL,
  memory_percent  double precision NOT NULL
);

CREATE INDEX throttle_events_at ON throttle_events (at DESC);
CREATE INDEX throttle_events_host_at ON throttle_events (host, at DESC);

-- Snapshots written in batches. A row normally holds one sample (samples = 1, *_max equal to
-- the value); when the writer's buffer overflows, samples of a host are merged into one row:
-- the values are then the means of `samples` samples and *_max their maxima.
CREATE TABLE load_history (
  host            text NOT NULL,
  at              timestamptz NOT NULL,
  samples         integer NOT NULL DEFAULT 1 CHECK (samples > 0),
  cpu_percent     double precision NOT NULL,
  cpu_max         double precision NOT NULL,
  memory_percent  double precision NOT NULL,
  memory_max      double precision NOT NULL,
  disk_percent    double precision NOT NULL,
  disk_max        double precision NOT NULL,
  load_avg_1m     double precision NOT NULL,
  load_avg_1m_max double precision NOT NULL,
  throttle_factor double precision NOT NULL
);

CREATE INDEX load_history_at ON load_history (at);
CREATE INDEX load_history_host_at ON load_history (host, at);

-- Writes one host's snapshot, records a throttle event when its factor changed (an unknown
-- host counts as factor 1) and NOTIFYs quota_load with the host name, in one round trip.
-- p_at NULL means the database clock (executor reports). The per-host advisory lock makes two
-- writers of one host record each change once, even for a host's first row.
CREATE FUNCTION quota_write_load(
  p_host text, p_at timestamptz, p_cpu double precision, p_memory double precision,
  p_disk double precision, p_disk_read double precision, p_disk_write double precision,
  p_net_rx double precision, p_net_tx double precision, p_load double precision,
  p_factor double precision,
  OUT at timestamptz, OUT previous_factor double precision)
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended('quota-authority:load:' || p_host, 0));
  SELECT h.throttle_factor INTO previous_factor FROM host_load h WHERE h.host = p_host;
  previous_factor := coalesce(previous_factor, 1.0);
  at := coalesce(p_at, clock_timestamp());
  INSERT INTO host_load AS h (host, at, cpu_percent, memory_percent, disk_percent,
    disk_read_bytes_per_sec, disk_write_bytes_per_sec, net_rx_bytes_per_sec,
    net_tx_bytes_per_sec, load_avg_1m, throttle_factor, updated_at)
  VALUES (p_host, at, p_cpu, p_memory, p_disk, p_disk_read, p_disk_write, p_net_rx, p_net_tx,
    p_load, p_factor, clock_timestamp())
  ON CONFLICT (host) DO UPDATE SET
    at = EXCLUDED.at, cpu_percent = EXCLUDED.cpu_percent,
    memory_percent = EXCLUDED.memory_percent, disk_percent = EXCLUDED.disk_percent,
    disk_read_bytes_per_sec = EXCLUDED.disk_read_bytes_per_sec,
    disk_write_bytes_per_sec = EXCLUDED.disk_write_bytes_per_sec,
    net_rx_bytes_per_sec = EXCLUDED.net_rx_bytes_per_sec,
    net_tx_bytes_per_sec = EXCLUDED.net_tx_bytes_per_sec, load_avg_1m = EXCLUDED.load_avg_1m,
    throttle_factor = EXCLUDED.throttle_factor, updated_at = EXCLUDED.updated_at;
  IF previous_factor <> p_factor THEN
    INSERT INTO throttle_events (host, previous_factor, factor, cpu_percent, memory_percent)
    VALUES (p_host, previous_factor, p_factor, p_cpu, p_memory);
  END IF;
  PERFORM pg_notify('quota_load', p_host);
END
$$;

-- Down Migration

DROP FUNCTION IF EXISTS quota_write_load(text, timestamptz, double precision, double precision,
  double precision, double precision, double precision, double precision, double precision,
  double precision, double precision);
DROP TABLE IF EXISTS load_history;
DROP TABLE IF EXISTS throttle_events;
DROP TRIGGER IF EXISTS throttle_thresholds_notify ON throttle_thresholds;
DROP TABLE IF EXISTS throttle_thresholds;
DROP TABLE IF EXISTS host_load;
