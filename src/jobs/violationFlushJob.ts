import type { AuditRecorder } from '../audit/AuditRecorder.js';
import type { Logger } from '../log.js';
import type { Job } from './Job.js';

/** How long the ids of written audit batches are kept, in s: far longer than any retry. */
export const AUDIT_BATCH_IDS_KEPT_S = 86_400;
/** How often this job forgets older batch ids, in ms. */
const FORGET_EVERY_MS = 3_600_000;

/**
 * Writes this replica's buffered violations and identity sightings every second, off the hot
 * path; the last batch on stop, before the pool closes. Denials that did not fit the buffer are
 * logged: folded (counted without details) as a warning, dropped (not counted) as an error.
 * Once an hour it also deletes the ids of audit batches (violations and statistics) written
 * more than a day ago: a batch is only ever sent again by the replica that made it, seconds
 * later, so a day is plenty; every replica may do it (the DELETE skips rows another holds).
 */
export function violationFlushJob(recorder: AuditRecorder, logger: Logger): Job {
  const seen = { folded: 0, dropped: 0 };
  let forgotAt = -Infinity;
  const forgetOldBatches = async () => {
    if (performance.now() - forgotAt < FORGET_EVERY_MS) return;
    forgotAt = performance.now();
    try {
      const deleted = await recorder.forgetBatches(AUDIT_BATCH_IDS_KEPT_S);
      if (deleted > 0) logger.debug({ deleted }, 'old audit batch ids deleted');
    } catch (err) {
      // Tried again in an hour; the flush itself went through.
      logger.warn({ err }, 'old audit batch ids not deleted');
    }
  };
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
      await forgetOldBatches();
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
