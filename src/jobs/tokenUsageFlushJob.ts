import type { Authenticator } from '../auth/Authenticator.js';
import type { Logger } from '../log.js';
import type { Job } from './Job.js';

/**
 * Writes when each token was last used, every 10 s on every replica (each remembers its own
 * calls): one statement for every token used since the last run, never one per call. The last
 * batch is written on stop, before the pool closes.
 */
export function tokenUsageFlushJob(authenticator: Authenticator, logger: Logger): Job {
  return {
    name: 'token-last-used',
    intervalMs: 10_000,
    clusterWide: false,
    async run() {
      await authenticator.flushUsage();
    },
    async finish() {
      await authenticator
        .flushUsage()
        .catch((err: unknown) => logger.warn({ err }, 'last use of tokens not written'));
    },
  };
}
