import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { silentLogger } from '../src/log.js';
import { migrate } from '../src/store/migrate.js';
import { startEmbeddedPostgres } from '../src/store/startEmbeddedPostgres.js';

/** The PostgreSQL that the service, the no-op baseline and the peer use in turn. */
export interface BenchDatabase {
  readonly url: string;
  /**
   * The process whose `postgres` descendants are the database (this one, for the embedded
   * server): their CPU time is the database's. Undefined for an external database.
   */
  readonly root: number | undefined;
  stop(): Promise<void>;
}

/**
 * DATABASE_URL as it is (migrated beforehand: the service never migrates an external database),
 * else an embedded PostgreSQL in a temporary folder, started by this process and migrated, so
 * that the servers the bench starts and the peer in this process all use one database server.
 */
export async function startBenchDatabase(): Promise<BenchDatabase> {
  const external = process.env['DATABASE_URL'];
  if (external) return { url: external, root: undefined, stop: async () => undefined };
  const dataDir = await mkdtemp(path.join(tmpdir(), 'quota-bench-db-'));
  const logger = silentLogger();
  try {
    const embedded = await startEmbeddedPostgres({ dataDir, logger });
    try {
      await migrate(embedded.url, logger);
    } catch (err) {
      await embedded.stop();
      throw err;
    }
    return {
      url: embedded.url,
      root: process.pid,
      async stop() {
        await embedded.stop();
        await rm(dataDir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await rm(dataDir, { recursive: true, force: true });
    throw err;
  }
}
