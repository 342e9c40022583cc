import type { LoadHistoryBuffer } from '../load/LoadHistoryBuffer.js';
import type { Logger } from '../log.js';
import type { Job } from './Job.js';

/**
 * Writes buffered load history every 2 s, off the hot path, on every replica (each buffers its
 * own); the last batch is written on stop, before the pool closes.
 */
export function loadHistoryFlushJob(history: LoadHistoryBuffer, logger: Logger): Job {
  return {
    name: 'load-history-flush',
    intervalMs: 2000,
    clusterWide: false,
    async run() {
      const before = { merged: history.merged, dropped: history.dropped };
      await history.flush();
      if (history.merged > before.merged || history.dropped > before.dropped)
        logger.warn(
          { merged: history.merged, dropped: history.dropped },
          'load history buffer was full: samples merged (dropped when their host had no row)',
        );
    },
    async finish() {
      await history.flush().catch((err: unknown) => logger.warn({ err }, 'load history lost'));
    },
  };
}
