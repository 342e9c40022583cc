import { afterAll, beforeAll } from 'vitest';
import { connect, type QuotaConnection } from '@quota-authority/client';
import type { App } from '../../src/app/App.js';
import { startApp } from '../../src/app/startApp.js';
import { loadConfig } from '../../src/config.js';
import { silentLogger } from '../../src/log.js';
import { createTestDatabase, type TestDatabase } from './testDatabase.js';
import { TEST_ADMIN_TOKEN } from './tokens.js';

/**
 * A real server on 127.0.0.1:0 against `databaseUrl`, and a client connected to it that sends
 * the server's admin token (TEST_ADMIN_TOKEN unless `env` sets QUOTA_ADMIN_TOKEN).
 */
export interface TestServer {
  readonly app: App;
  readonly client: QuotaConnection;
  readonly address: string;
  stop(): Promise<void>;
}

export async function startTestServer(
  databaseUrl: string,
  env: Record<string, string> = {},
): Promise<TestServer> {
  const config = loadConfig({
    DATABASE_URL: databaseUrl,
    QUOTA_HOST: '127.0.0.1',
    QUOTA_PORT: '0',
    QUOTA_METRICS_PORT: '0',
    LOG_LEVEL: 'silent',
    QUOTA_ADMIN_TOKEN: TEST_ADMIN_TOKEN,
    // Half the default: two files at once start up to six servers, each warming its whole
    // pool, and a PostgreSQL of Debian's defaults takes 100 connections in all.
    QUOTA_DB_POOL_SIZE: '8',
    ...env,
  });
  const app = await startApp(config, silentLogger());
  const address = `127.0.0.1:${app.port}`;
  // One CheckLimit per call: files here count and time CheckLimit calls; client batching is
  // tested on its own (clientBatching.test.ts).
  const client = connect({ address: address, token: config.adminToken, batching: false });
  return {
    app,
    client,
    address,
    async stop() {
      client.close();
      await app.stop(1000);
    },
  };
}

/**
 * A database and a server of the calling test file's own: made before its tests, stopped and
 * dropped after them. Read `db` and `server` inside tests and hooks (they are set by then).
 */
export function useTestServer(env: Record<string, string> = {}): {
  readonly db: TestDatabase;
  readonly server: TestServer;
} {
  const made: { db?: TestDatabase; server?: TestServer } = {};
  beforeAll(async () => {
    made.db = await createTestDatabase();
    made.server = await startTestServer(made.db.url, env);
  });
  afterAll(async () => {
    await made.server?.stop();
    await made.db?.drop();
  });
  return {
    get db() {
      return made.db!;
    },
    get server() {
      return made.server!;
    },
  };
}
