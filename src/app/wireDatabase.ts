import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { Database } from '../store/Database.js';
import { migrate, pendingMigrations } from '../store/migrate.js';
import { PgChangeFeed } from '../store/PgChangeFeed.js';
import { startEmbeddedPostgres } from '../store/startEmbeddedPostgres.js';
import type { Job } from '../jobs/Job.js';
import { databaseGauges } from '../metrics/databaseGauges.js';
import { wire, type HealthPart } from './Capability.js';

/**
 * The database every capability shares: the embedded PostgreSQL (migrated at start) when no
 * DATABASE_URL is set, the pool with its breaker, and the change feed. Health needs the
 * database answering and the schema migrated; an external database is never migrated here.
 */
export function wireDatabase(config: Config, logger: Logger) {
  return wire(logger, async (stops) => {
    let url = config.databaseUrl;
    if (url === undefined) {
      const started = performance.now();
      const embedded = await startEmbeddedPostgres({ dataDir: config.dataDir, logger });
      stops.push(() => embedded.stop());
      url = embedded.url;
      const applied = await migrate(url, logger);
      logger.info(
        { dataDir: config.dataDir, ms: Math.round(performance.now() - started), applied },
        'embedded PostgreSQL ready',
      );
    }
    // Until the schema check finds nothing pending (checked again every second until then).
    let migrated = false;
    const db = new Database({
      url,
      timeoutMs: config.dbTimeoutMs,
      poolSize: config.dbPoolSize,
      logger,
      migrationsPending: () => !migrated,
    });
    stops.push(() => db.close());
    await db.warm();
    // quota_config: rules and thresholds changed; quota_load: a host's snapshot was written.
    const feed = new PgChangeFeed(url, ['quota_config', 'quota_load'], logger);
    await feed.start();
    stops.push(() => feed.stop());

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
    return {
      db,
      url,
      feed,
      handlers: {},
      health: <HealthPart[]>[
        { name: 'database', ready: (): boolean => db.available },
        { name: 'schema', ready: () => migrated },
      ],
      gauges: databaseGauges(db, config.dbPoolSize),
      jobs: <Job[]>[
        {
          // Probes even without traffic, so health follows the database while idle.
          name: 'database-probe',
          intervalMs: 1000,
          clusterWide: false,
          async run() {
            if (db.available) await db.query('SELECT 1', [], { fast: true }).catch(() => undefined);
            if (!migrated && db.available) await checkSchema();
          },
        },
      ],
    };
  });
}
