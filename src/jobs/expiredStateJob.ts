import type { LimitMaintenance } from '../limits/ports.js';
import type { Logger } from '../log.js';
import type { Job } from './Job.js';

/** Deletes expired rate-limit counters and idempotency answers, on one replica a minute. */
export function expiredStateJob(maintenance: LimitMaintenance, logger: Logger): Job {
  return {
    name: 'expired-state-cleanup',
    intervalMs: 60_000,
    clusterWide: true,
    async run() {
      const deleted = await maintenance.deleteExpired();
      if (deleted.counters + deleted.idempotencyKeys > 0)
        logger.info(deleted, 'expired state deleted');
    },
  };
}
