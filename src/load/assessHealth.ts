import type { HealthState, HostHealth, HostLoad, Thresholds } from './types.js';

const RANK: Record<HealthState, number> = { healthy: 0, warning: 1, critical: 2 };

/**
 * A host's health: warning when a metric is at or above `slight`, critical when one is above
 * `critical`, the factor is 0 or the data is stale. Each reason names the highest threshold
 * reached, e.g. "cpu 85.0% >= 80%".
 */
export function assessHealth(load: HostLoad, t: Thresholds): HostHealth {
  let state = 'healthy' as HealthState;
  const reasons: string[] = [];
  const raise = (s: HealthState) => {
    if (RANK[s] > RANK[state]) state = s;
  };
  const metrics: [string, number][] = [
    ['cpu', load.cpuPercent],
    ['memory', load.memoryPercent],
    ['disk', load.diskPercent],
  ];
  for (const [name, v] of metrics) {
    if (v > t.critical) {
      reasons.push(`${name} ${v.toFixed(1)}% > ${t.critical}%`);
      raise('critical');
    } else if (v >= t.slight) {
      const level = v >= t.heavy ? t.heavy : v >= t.moderate ? t.moderate : t.slight;
      reasons.push(`${name} ${v.toFixed(1)}% >= ${level}%`);
      raise('warning');
    }
  }
  if (load.throttleFactor === 0 && state !== 'critical') {
    reasons.push('throttle factor 0');
    raise('critical');
  }
  if (load.stale) {
    reasons.push(`no data for ${(load.ageMs / 1000).toFixed(1)}s`);
    raise('critical');
  }
  return {
    host: load.host,
    state,
    reasons,
    throttleFactor: load.throttleFactor,
    at: load.at,
  };
}
