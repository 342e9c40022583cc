import type { Logger } from '../log.js';
import type { Job } from './Job.js';
import type { LoadRollupStore } from './ports.js';

/**
 * Rolls raw load history up into hourly load every 5 minutes, on one replica: the current
 * hour's figures are at most 5 minutes behind, and hourly load outlives the raw samples.
 */
export function hourlyRollupsJob(store: LoadRollupStore, logger: Logger): Job {
  return {
    name: 'hourly-rollups',
    intervalMs: 300_000,
    clusterWide: true,
    async run() {
      const done = await store.rollUp();
      logger.debug({ job: 'hourly-rollups', ...done }, 'hourly load rolled up');
    },
  };
}
