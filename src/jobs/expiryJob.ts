import type { Logger } from '../log.js';
import type { Job } from './Job.js';

/**
 * A cluster-wide job that deletes expired state once a minute on one replica, and logs what it
 * deleted (per kind of row) when it deleted anything.
 */
export function expiryJob(
  name: string,
  maintenance: { deleteExpired(): Promise<Readonly<Record<string, number>>> },
  logger: Logger,
): Job {
  return {
    name,
    intervalMs: 60_000,
    clusterWide: true,
    async run() {
      const deleted = await maintenance.deleteExpired();
      if (Object.values(deleted).some((n) => n > 0)) {
        logger.info({ job: name, ...deleted }, 'expired state deleted');
      }
    },
  };
}
