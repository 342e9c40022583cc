import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { migrate } from '../../src/store/migrate.js';
import { healthCheck } from '../support/healthCheck.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';
import { waitFor } from '../support/waitFor.js';
import { startTestServer, type TestServer } from '../support/testServer.js';

let db: TestDatabase;
let server: TestServer | undefined;

beforeAll(async () => {
  db = await createTestDatabase({ empty: true });
});

afterAll(async () => {
  await server?.stop();
  await db?.drop();
});

describe('an external database', () => {
  it('is NOT_SERVING until migrated, then SERVING without a restart', async () => {
    // Its schema comes first (the app needs its tables to start), but one migration is missing.
    const all = await migrate(db.url, silentLogger());
    await migrate(db.url, silentLogger(), 'down', 1);
    server = await startTestServer(db.url);
    expect(await healthCheck(server.address, '')).toBe('NOT_SERVING');
    expect(all.length).toBeGreaterThan(1);
    await migrate(db.url, silentLogger());
    let status = 'NOT_SERVING';
    await waitFor(async () => {
      status = await healthCheck(server!.address, '');
      return status === 'SERVING';
    }).catch(() => undefined);
    expect(status).toBe('SERVING');
  });
});
