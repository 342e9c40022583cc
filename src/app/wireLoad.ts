import type { Config } from '../config.js';
import type { HandlerDeps } from '../grpc/HandlerDeps.js';
import { loadHandlers } from '../grpc/loadHandlers.js';
import { loadHistoryFlushJob } from '../jobs/loadHistoryFlushJob.js';
import { LinuxLoadSampler } from '../load/LinuxLoadSampler.js';
import { LoadAdmin } from '../load/LoadAdmin.js';
import { LoadHistoryBuffer } from '../load/LoadHistoryBuffer.js';
import { LoadHub } from '../load/LoadHub.js';
import type { LoadSampler } from '../load/ports.js';
import { ProcessLoadSampler } from '../load/ProcessLoadSampler.js';
import { SamplingLoop } from '../load/SamplingLoop.js';
import { SystemLoadSampler } from '../load/SystemLoadSampler.js';
import { ThresholdSettings } from '../load/ThresholdSettings.js';
import type { Logger } from '../log.js';
import { hostLoadGauges } from '../metrics/hostLoadGauges.js';
import type { Database } from '../store/Database.js';
import type { PgChangeFeed } from '../store/PgChangeFeed.js';
import { PgLoadHistoryStore } from '../store/PgLoadHistoryStore.js';
import { PgLoadStore } from '../store/PgLoadStore.js';
import { PgThrottleStore } from '../store/PgThrottleStore.js';
import { wire } from './Capability.js';

/**
 * Host load: this replica's sampling loop, the cluster view every replica follows through the
 * change feed, the throttle thresholds, load history, and their gRPC methods. Its hub is the
 * throttle source of the decision capabilities.
 */
export function wireLoad(
  config: Config,
  logger: Logger,
  db: Database,
  feed: PgChangeFeed,
  deps: HandlerDeps,
) {
  return wire(logger, async (stops) => {
    const throttleStore = new PgThrottleStore(db);
    const thresholds = new ThresholdSettings(throttleStore, config.throttleThresholds, logger);
    await thresholds.start(feed);
    stops.push(() => thresholds.stop());
    const historyStore = new PgLoadHistoryStore(db);
    const history = new LoadHistoryBuffer(historyStore);
    const loadStore = new PgLoadStore(db);
    const hub = new LoadHub(loadStore, history, thresholds, logger, {
      intervalMs: config.loadIntervalMs,
    });
    feed.onNotification((channel, payload) => {
      if (channel === 'quota_load') hub.hostWritten(payload);
    });
    feed.onReconnect(() => void hub.refresh().catch(() => undefined));
    await hub.start();
    stops.push(() => hub.stop());

    const sampler = chooseSampler(
      config.databaseUrl === undefined ? config.dataDir : process.cwd(),
    );
    if (sampler instanceof ProcessLoadSampler) stops.push(() => sampler.close());
    const sampling = new SamplingLoop(sampler, config.hostName, config.loadIntervalMs, logger);
    sampling.subscribe((snapshot) => void hub.ingestLocal(snapshot));
    sampling.start();
    stops.push(() => sampling.stop());

    const admin = new LoadAdmin(hub, historyStore, throttleStore, thresholds);
    return {
      hub,
      sampling,
      admin,
      handlers: loadHandlers({ hub, admin }, deps),
      health: [],
      gauges: hostLoadGauges(hub),
      // Retention of load history and throttle events is the retention task's (wireTasks).
      jobs: [loadHistoryFlushJob(history, logger)],
    };
  });
}

/**
 * On Linux, /proc read directly; elsewhere systeminformation, which runs commands synchronously:
 * in a child process when compiled, on this thread from TypeScript sources (tests).
 */
function chooseSampler(dataPath: string): LoadSampler {
  if (LinuxLoadSampler.available()) return new LinuxLoadSampler(dataPath);
  if (ProcessLoadSampler.available()) return new ProcessLoadSampler(dataPath);
  return new SystemLoadSampler(dataPath);
}
