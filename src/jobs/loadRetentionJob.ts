import type { LoadStore } from '../load/ports.js';
import type { Logger } from '../log.js';
import type { Job } from './Job.js';

/** Deletes load history and throttle events older than `days`, on one replica every 10 min. */
export function loadRetentionJob(store: LoadStore, days: number, logger: Logger): Job {
  return {
    name: 'load-retention',
    intervalMs: 600_000,
    clusterWide: true,
    async run() {
      const deleted = await store.deleteOld(days);
      if (deleted.history + deleted.events > 0) logger.info(deleted, 'old load history deleted');
    },
  };
}
