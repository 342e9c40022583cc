import type { AttackStore, DetectionSettings } from '../audit/ports.js';
import type { Logger } from '../log.js';
import type { Job } from './Job.js';

/**
 * Finds attack patterns every 5 s on one replica of the cluster: flags them (and, when blocking
 * is on, blocks newly flagged keys, and again keys whose block ended while their pattern goes on)
 * and forgets identity sightings past the window.
 */
export function attackDetectionJob(
  attacks: AttackStore,
  settings: DetectionSettings,
  logger: Logger,
): Job {
  return {
    name: 'attack-detection',
    intervalMs: 5000,
    clusterWide: true,
    async run() {
      const result = await attacks.detect(settings);
      if (result.blocked > 0) logger.warn({ ...result }, 'attack patterns found: keys blocked');
      else if (result.flagged > 0) logger.info({ ...result }, 'attack patterns flagged');
    },
  };
}
