import type { Logger } from '../log.js';
import type { QuotaMaintenance } from '../quotas/ports.js';
import type { Job } from './Job.js';

/** Deletes long-expired reservations and usage of long-gone months, on one replica a minute. */
export function expiredReservationsJob(maintenance: QuotaMaintenance, logger: Logger): Job {
  return {
    name: 'expired-reservations-cleanup',
    intervalMs: 60_000,
    clusterWide: true,
    async run() {
      const deleted = await maintenance.deleteExpired();
      if (deleted.reservations + deleted.usage > 0) {
        logger.info(deleted, 'expired command quota state deleted');
      }
    },
  };
}
