import type { AuditRecorder } from '../audit/AuditRecorder.js';
import type { Logger } from '../log.js';
import type { Job } from './Job.js';

/**
 * Writes this replica's buffered violations and identity sightings every second, off the hot
 * path; the last batch on stop, before the pool closes. Denials that did not fit the buffer are
 * logged: folded (counted without details) as a warning, dropped (not counted) as an error.
 * (The ids of written audit batches are deleted after a day by retention-cleanup.)
 */
export function violationFlushJob(recorder: AuditRecorder, logger: Logger): Job {
  const seen = { folded: 0, dropped: 0 };
  const report = () => {
    const { folded, dropped } = recorder.violations;
    if (dropped > seen.dropped)
      logger.error(
        { dropped: dropped - seen.dropped, droppedTotal: dropped },
        'violation buffer full: denials not recorded',
      );
    if (folded > seen.folded)
      logger.warn(
        { folded: folded - seen.folded, foldedTotal: folded },
        'violation buffer full: denials counted under their rule without details',
      );
    seen.folded = folded;
    seen.dropped = dropped;
  };
  return {
    name: 'violations-flush',
    intervalMs: 1000,
    clusterWide: false,
    async run() {
      report();
      await recorder.flushViolations();
    },
    async finish() {
      report();
      await recorder
        .flushViolations()
        .catch((err: unknown) =>
          logger.error(
            { err, rows: recorder.violations.size + recorder.pendingViolations.rows },
            'violations not written at stop: lost',
          ),
        );
    },
  };
}
