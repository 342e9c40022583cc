import type { AuditRecorder } from '../audit/AuditRecorder.js';
import type { Logger } from '../log.js';
import type { Job } from './Job.js';

/**
 * Adds this replica's decision counts to the stored statistics every 5 s; the last counts on
 * stop, before the pool closes. A failed write keeps its chunks, sent first at the next run.
 */
export function statsFlushJob(recorder: AuditRecorder, logger: Logger): Job {
  return {
    name: 'stats-flush',
    intervalMs: 5000,
    clusterWide: false,
    run: () => recorder.flushStats(),
    async finish() {
      await recorder
        .flushStats()
        .catch((err: unknown) =>
          logger.error(
            { err, rows: recorder.stats.size + recorder.pendingStats.rows },
            'statistics not written at stop: lost',
          ),
        );
    },
  };
}
