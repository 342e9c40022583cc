import { ValidationError } from '../errors.js';
import type {
  Direction as DomainDirection,
  HealthState as DomainHealth,
  HostLoad,
  LoadFigures,
  Thresholds,
} from '../load/types.js';
import {
  Direction,
  HealthState,
  type ThrottleThresholds,
} from '../../clients/typescript/src/gen/quota/v1/admin_service.js';
import type {
  LoadSnapshot,
  ReportLoadRequest,
} from '../../clients/typescript/src/gen/quota/v1/quota_service.js';

/** An executor's report: the host and its figures, nothing else of the message. */
export function reportFromProto(req: ReportLoadRequest): LoadFigures & { host: string } {
  return {
    host: req.host,
    cpuPercent: req.cpuPercent,
    memoryPercent: req.memoryPercent,
    diskPercent: req.diskPercent,
    diskReadBytesPerSec: req.diskReadBytesPerSec,
    diskWriteBytesPerSec: req.diskWriteBytesPerSec,
    netRxBytesPerSec: req.netRxBytesPerSec,
    netTxBytesPerSec: req.netTxBytesPerSec,
    loadAvg1m: req.loadAvg1m,
  };
}

/** An unset message is a missing field; the values are checked by the domain. */
export function thresholdsFromProto(t: ThrottleThresholds | undefined): Thresholds {
  if (!t) throw new ValidationError('thresholds', 'is required');
  return { slight: t.slight, moderate: t.moderate, heavy: t.heavy, critical: t.critical };
}

/** An empty list of hosts means every host. */
export function hostsFromProto(hosts: readonly string[]): readonly string[] | undefined {
  return hosts.length === 0 ? undefined : hosts;
}

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
