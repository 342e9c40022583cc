import type { Config } from './config.js';
import { GrpcServer } from './grpc/GrpcServer.js';
import { adminHandlers } from './grpc/adminHandlers.js';
import { quotaHandlers } from './grpc/quotaHandlers.js';
import { PeriodicJob } from './jobs/PeriodicJob.js';
import { LimitService } from './limits/LimitService.js';
import { RuleAdmin } from './limits/RuleAdmin.js';
import { RuleCache } from './limits/RuleCache.js';
import type { Logger } from './log.js';
import { Metrics } from './metrics/Metrics.js';
import { Database } from './store/Database.js';
import { migrate, pendingMigrations } from './store/migrate.js';
import { PgChangeFeed } from './store/PgChangeFeed.js';
import { PgLimitStore } from './store/PgLimitStore.js';
import { PgMaintenance } from './store/PgMaintenance.js';
import { PgRuleStore } from './store/PgRuleStore.js';
import { startEmbeddedPostgres, type EmbeddedDatabase } from './store/startEmbeddedPostgres.js';

/** A running service. */
export interface App {
  /** The bound gRPC port. */
  readonly port: number;
  /** The bound metrics port, or 0 when disabled. */
  readonly metricsPort: number;
  /** The database URL in use (the embedded server's when DATABASE_URL is unset). */
  readonly databaseUrl: string;
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
    const feed = new PgChangeFeed(url, ['quota_config'], logger);
    await feed.start();
    cleanups.push(() => feed.stop());

    const ruleStore = new PgRuleStore(db);
    const ruleCache = new RuleCache(ruleStore, logger);
    await ruleCache.start(feed);
    cleanups.push(() => ruleCache.stop());

    const limits = new LimitService(
      ruleCache,
      new PgLimitStore(db, { timeoutMs: config.dbTimeoutMs }),
      { factorFor: () => 1 },
      {
        failureMode: config.failureMode,
        timezone: config.timezone,
      },
    );
    const rules = new RuleAdmin(ruleStore, ruleCache);

    const metrics = new Metrics();
    const deps = { logger, observer: metrics };
    const server = new GrpcServer({
      logger,
      quota: quotaHandlers({ limits }, deps),
      admin: adminHandlers({ rules }, deps),
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
