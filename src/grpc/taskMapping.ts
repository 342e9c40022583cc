import type { JobStatus } from '../jobs/Job.js';
import type { DeletedRows as DomainDeletedRows, RetentionDays } from '../jobs/ports.js';
import type {
  CleanupOldDataRequest,
  DeletedRows,
  TaskStatus,
} from '../../clients/typescript/src/gen/quota/v1/admin_service.js';
import { toDuration } from './durations.js';

export function taskStatusToProto(s: JobStatus): TaskStatus {
  return {
    name: s.name,
    interval: toDuration(s.intervalMs),
    clusterWide: s.clusterWide,
    runs: s.runs,
    failures: s.failures,
    skipped: s.skipped,
    consecutiveFailures: s.consecutiveFailures,
    lastRunAt: s.lastRunAt ?? undefined,
    lastDuration: s.lastDurationMs === null ? undefined : toDuration(s.lastDurationMs),
    lastError: s.lastError ?? '',
    nextRunAt: s.nextRunAt ?? undefined,
    running: s.running,
  };
}

/** proto3's 0 (unset) keeps the configured retention: the kind is left out. */
export function retentionOverridesFromProto(req: CleanupOldDataRequest): Partial<RetentionDays> {
  const days: { -readonly [K in keyof RetentionDays]?: number } = {};
  if (req.executionsDays !== 0) days.executions = req.executionsDays;
  if (req.violationsDays !== 0) days.violations = req.violationsDays;
  if (req.loadHistoryDays !== 0) days.loadHistory = req.loadHistoryDays;
  if (req.rollupsDays !== 0) days.rollups = req.rollupsDays;
  return days;
}

/** By table name. */
export function deletedRowsToProto(deleted: DomainDeletedRows): DeletedRows[] {
  return Object.entries(deleted)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([table, rows]) => ({ table, rows }));
}
