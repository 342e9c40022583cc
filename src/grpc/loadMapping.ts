import type { Direction as DomainDirection, HealthState as DomainHealth } from '../load/types.js';
import type { HostLoad } from '../load/types.js';
import { Direction, HealthState } from '../../clients/typescript/src/gen/quota/v1/admin_service.js';
import type { LoadSnapshot } from '../../clients/typescript/src/gen/quota/v1/quota_service.js';

export function loadSnapshotToProto(l: HostLoad): LoadSnapshot {
  return {
    host: l.host,
    at: l.at,
    cpuPercent: l.cpuPercent,
    memoryPercent: l.memoryPercent,
    diskPercent: l.diskPercent,
    diskReadBytesPerSec: l.diskReadBytesPerSec,
    diskWriteBytesPerSec: l.diskWriteBytesPerSec,
    netRxBytesPerSec: l.netRxBytesPerSec,
    netTxBytesPerSec: l.netTxBytesPerSec,
    loadAvg1m: l.loadAvg1m,
    throttleFactor: l.throttleFactor,
    stale: l.stale,
  };
}

const HEALTH: Record<DomainHealth, HealthState> = {
  healthy: HealthState.HEALTH_STATE_HEALTHY,
  warning: HealthState.HEALTH_STATE_WARNING,
  critical: HealthState.HEALTH_STATE_CRITICAL,
};

export function healthToProto(state: DomainHealth): HealthState {
  return HEALTH[state];
}

const DIRECTION: Record<DomainDirection, Direction> = {
  rising: Direction.DIRECTION_RISING,
  falling: Direction.DIRECTION_FALLING,
  stable: Direction.DIRECTION_STABLE,
  unknown: Direction.DIRECTION_UNSPECIFIED,
};

export function directionToProto(d: DomainDirection): Direction {
  return DIRECTION[d];
}
