import type { HostLoad } from '../load/types.js';
import type { GaugeSource } from './GaugeSource.js';

/** What the host gauges read: the cluster load view this replica follows. */
export interface HostLoadView {
  list(): readonly HostLoad[];
}

/** Hosts exported at most: any client may report load under a host name of its choosing. */
export const MAX_HOST_SERIES = 500;

/**
 * Each known host's latest load and throttle factor, as this replica sees the cluster: the
 * MAX_HOST_SERIES freshest. Hosts the view has forgotten (silent for 10 sampling intervals)
 * leave the scrape with it, and a client reporting under ever new names cannot grow the host
 * label past the bound.
 */
export function hostLoadGauges(view: HostLoadView): GaugeSource[] {
  const freshest = (): readonly HostLoad[] => {
    const all = view.list();
    return all.length <= MAX_HOST_SERIES
      ? all
      : [...all].sort((a, b) => a.ageMs - b.ageMs).slice(0, MAX_HOST_SERIES);
  };
  const perHost =
    (figure: (l: HostLoad) => number) => (): { labels: { host: string }; value: number }[] =>
      freshest().map((l) => ({ labels: { host: l.host }, value: figure(l) }));
  const gauge = (name: string, help: string, figure: (l: HostLoad) => number): GaugeSource => ({
    name,
    help,
    labelNames: ['host'],
    read: perHost(figure),
  });
  return [
    gauge('quota_host_cpu_percent', 'CPU use of the host, 0-100', (l) => l.cpuPercent),
    gauge('quota_host_memory_percent', 'Memory use of the host, 0-100', (l) => l.memoryPercent),
    gauge(
      'quota_host_disk_percent',
      'Disk use of the host data volume, 0-100',
      (l) => l.diskPercent,
    ),
    gauge('quota_host_load_average_1m', 'One-minute load average of the host', (l) => l.loadAvg1m),
    gauge(
      'quota_host_throttle_factor',
      'Throttle factor of the host under the thresholds in force, 0-1 (1: not throttled)',
      (l) => l.throttleFactor,
    ),
    gauge(
      'quota_host_data_age_seconds',
      'Time since the host figures were last written, in seconds (stale past 3 intervals)',
      (l) => l.ageMs / 1000,
    ),
  ];
}
