import { setMaxListeners } from 'node:events';
import type { Config } from './config.js';
import { GrpcServer } from './grpc/GrpcServer.js';
import { adminHandlers } from './grpc/adminHandlers.js';
import { quotaHandlers } from './grpc/quotaHandlers.js';
import { PeriodicJob } from './jobs/PeriodicJob.js';
import { LimitService } from './limits/LimitService.js';
import { RuleAdmin } from './limits/RuleAdmin.js';
import { RuleCache } from './limits/RuleCache.js';
import { LoadAdmin } from './load/LoadAdmin.js';
import { LoadHistoryBuffer } from './load/LoadHistoryBuffer.js';
import { LoadHub } from './load/LoadHub.js';
import { SamplingLoop } from './load/SamplingLoop.js';
import { SystemLoadSampler } from './load/SystemLoadSampler.js';
import { LinuxLoadSampler } from './load/LinuxLoadSampler.js';
import type { LoadSampler } from './load/ports.js';
import { ProcessLoadSampler } from './load/ProcessLoadSampler.js';
import { ThresholdSettings } from './load/ThresholdSettings.js';
import type { Logger } from './log.js';
import { Metrics } from './metrics/Metrics.js';
import { Database } from './store/Database.js';
import { migrate, pendingMigrations } from './store/migrate.js';
import { PgChangeFeed } from './store/PgChangeFeed.js';
import { PgLimitStore } from './store/PgLimitStore.js';
import { PgLoadHistoryStore } from './store/PgLoadHistoryStore.js';
import { PgLoadStore } from './store/PgLoadStore.js';
import { PgMaintenance } from './store/PgMaintenance.js';
import { PgRuleStore } from './store/PgRuleStore.js';
import { PgThrottleStore } from './store/PgThrottleStore.js';
import { startEmbeddedPostgres, type EmbeddedDatabase } from './store/startEmbeddedPostgres.js';

/** A running service. */
export interface App {
  /** The bound gRPC port. */
  readonly port: number;
  /** The bound metrics port, or 0 when disabled. */
  readonly metricsPort: number;
  /** The database URL in use (the embedded server's when DATABASE_URL is unset). */
  readonly databaseUrl: string;
  /** Load samples taken by this process's one sampling loop since start. */
  loadSamples(): number;
  /** WatchLoad streams open on this replica. */
  loadWatchers(): number;
  /** Graceful stop: NOT_SERVING, drain, close the database, stop the embedded server. */
  stop(graceMs?: number): Promise<void>;
}

/** The composition root: builds and wires every part; nothing else constructs them. */
export async function startApp(config: Config, logger: Logger): Promise<App> {
  const cleanups: (() => Promise<void> | void)[] = [];
  const cleanup = async () => {
    for (const fn of cleanups.splice(0).reverse()) {
      await Promise.resolve(fn()).catch((err: unknown) =>
        logger.warn({ err }, 'cleanup step failed'),
      );
    }
  };
  try {
    let embedded: EmbeddedDatabase | undefined;
    let url = config.databaseUrl;
    if (url === undefined) {
      const started = performance.now();
      embedded = await startEmbeddedPostgres({ dataDir: config.dataDir, logger });
      const db = embedded;
      cleanups.push(() => db.stop());
      url = embedded.url;
      const applied = await migrate(url, logger);
      logger.info(
        { dataDir: config.dataDir, ms: Math.round(performance.now() - started), applied },
        'embedded PostgreSQL ready',
      );
    }

    const db = new Database({
      url,
      timeoutMs: config.dbTimeoutMs,
      poolSize: config.dbPoolSize,
      logger,
    });
    cleanups.push(() => db.close());
    await db.warm();
    // quota_config: rules and thresholds changed; quota_load: a host's snapshot was written.
    const feed = new PgChangeFeed(url, ['quota_config', 'quota_load'], logger);
    await feed.start();
    cleanups.push(() => feed.stop());

    const ruleStore = new PgRuleStore(db);
    const ruleCache = new RuleCache(ruleStore, logger);
    await ruleCache.start(feed);
    cleanups.push(() => ruleCache.stop());

    const throttleStore = new PgThrottleStore(db);
    const thresholds = new ThresholdSettings(throttleStore, config.throttleThresholds, logger);
    await thresholds.start(feed);
    cleanups.push(() => thresholds.stop());
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
    cleanups.push(() => hub.stop());
    // Batched off the hot path; the last batch is written on stop, before the pool closes.
    const historyJob = new PeriodicJob(
      'load-history-flush',
      2000,
      async () => {
        const before = { merged: history.merged, dropped: history.dropped };
        await history.flush();
        if (history.merged > before.merged || history.dropped > before.dropped)
          logger.warn(
            { merged: history.merged, dropped: history.dropped },
            'load history buffer was full: samples merged (dropped when their host had no row)',
          );
      },
      logger,
    );
    historyJob.start();
    cleanups.push(async () => {
      await historyJob.stop();
      await history.flush().catch((err: unknown) => logger.warn({ err }, 'load history lost'));
    });
    const dataPath = config.databaseUrl === undefined ? config.dataDir : process.cwd();
    const sampler = chooseSampler(dataPath);
    if (sampler instanceof ProcessLoadSampler) cleanups.push(() => sampler.close());
    const sampling = new SamplingLoop(sampler, config.hostName, config.loadIntervalMs, logger);
    sampling.subscribe((snapshot) => void hub.ingestLocal(snapshot));
    sampling.start();
    cleanups.push(() => sampling.stop());

    const limits = new LimitService(
      ruleCache,
      new PgLimitStore(db, { timeoutMs: config.dbTimeoutMs }),
      hub,
      {
        failureMode: config.failureMode,
        timezone: config.timezone,
        logger,
      },
    );
    const rules = new RuleAdmin(ruleStore, ruleCache);

    const metrics = new Metrics();
    // Aborted when shutdown starts: WatchLoad streams end so that draining does not wait on them.
    const streams = new AbortController();
    // One listener per open stream: hundreds are expected, not a leak.
    setMaxListeners(0, streams.signal);
    const deps = { logger, observer: metrics, shutdown: streams.signal };
    const server = new GrpcServer({
      logger,
      quota: quotaHandlers({ limits, load: hub }, deps),
      admin: adminHandlers(
        { rules, load: new LoadAdmin(hub, historyStore, throttleStore, thresholds) },
        deps,
      ),
      onShutdown: () => streams.abort(),
    });

    // SERVING only while the database answers, the schema is migrated and rules are loaded.
    let migrated = false;
    let stopping = false;
    const updateHealth = () =>
      server.setServing(!stopping && migrated && db.available && ruleCache.ready);
    const checkSchema = async () => {
      const pending = await pendingMigrations(db);
      if (pending.length > 0 && !migrated) {
        logger.warn(
          { pending },
          'database is not migrated: run `npm run migrate`; NOT_SERVING until then',
        );
      }
      migrated = pending.length === 0;
    };
    await checkSchema().catch((err: unknown) => logger.warn({ err }, 'schema check failed'));
    db.on('down', updateHealth);
    db.on('up', () => {
      void ruleCache.reload().then(updateHealth);
    });
    // Probes the database even without traffic, so health follows it while idle.
    const healthJob = new PeriodicJob(
      'health',
      1000,
      async () => {
        if (db.available) await db.query('SELECT 1', [], { fast: true }).catch(() => undefined);
        if (!migrated && db.available) await checkSchema();
        updateHealth();
      },
      logger,
    );
    healthJob.start();
    cleanups.push(() => healthJob.stop());

    const maintenance = new PgMaintenance(db);
    const cleanupJob = new PeriodicJob(
      'cleanup',
      60_000,
      async () => {
        const deleted = await maintenance.deleteExpired();
        if (deleted && deleted.counters + deleted.idempotencyKeys > 0)
          logger.info(deleted, 'expired state deleted');
      },
      logger,
    );
    cleanupJob.start();
    cleanups.push(() => cleanupJob.stop());
    const loadCleanupJob = new PeriodicJob(
      'load-cleanup',
      600_000,
      async () => {
        const deleted = await loadStore.deleteOld(config.loadHistoryDays);
        if (deleted && deleted.history + deleted.events > 0)
          logger.info(deleted, 'old load history deleted');
      },
      logger,
    );
    loadCleanupJob.start();
    cleanups.push(() => loadCleanupJob.stop());

    const port = await server.listen(config.host, config.port);
    cleanups.push(() => server.shutdown(0));
    const metricsPort = config.metricsPort === 0 ? 0 : await metrics.listen(config.metricsPort);
    cleanups.push(() => metrics.close());
    updateHealth();
    logger.info(
      { host: config.host, port, metricsPort, embedded: embedded !== undefined },
      'quota-authority listening',
    );

    return {
      port,
      metricsPort,
      databaseUrl: url,
      loadSamples: () => sampling.samples,
      loadWatchers: () => hub.watching,
      async stop(graceMs = 10_000) {
        stopping = true;
        logger.info({ graceMs }, 'shutting down: NOT_SERVING, draining calls');
        await server.shutdown(graceMs);
        await cleanup();
        logger.info('stopped');
        logger.flush();
      },
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
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
