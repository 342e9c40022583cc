import { status as grpcStatus } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { QuotaCallError } from '@quota-authority/client';
import { silentLogger } from '../../src/log.js';
import { migrate } from '../../src/store/migrate.js';
import { healthCheck } from '../support/healthCheck.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';
import { waitFor } from '../support/waitFor.js';
import { startTestServer, type TestServer } from '../support/testServer.js';

let db: TestDatabase;
let bare: TestDatabase;
let server: TestServer | undefined;
let bareServer: TestServer | undefined;

beforeAll(async () => {
  [db, bare] = await Promise.all([
    createTestDatabase({ empty: true }),
    createTestDatabase({ empty: true }),
  ]);
});

afterAll(async () => {
  await Promise.all([server?.stop(), bareServer?.stop()]);
  await Promise.all([db?.drop(), bare?.drop()]);
});

const failure = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (err: QuotaCallError) => ({ code: err.code, details: err.details }),
  );

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

  it('answers UNAVAILABLE naming the migration, never INTERNAL, until migrated; then decides', async () => {
    bareServer = await startTestServer(bare.url);
    expect(await healthCheck(bareServer.address, '')).toBe('NOT_SERVING');
    const { quota, admin } = bareServer.client;
    const calls = {
      checkLimit: failure(quota.checkLimit({ userId: 'u' })),
      checkCommandQuota: failure(quota.checkCommandQuota({ userId: 'u', commandType: 'shell' })),
      listRateLimitRules: failure(admin.listRateLimitRules({})),
      listTasks: failure(admin.listTasks({})),
    };
    for (const [name, answer] of Object.entries(calls)) {
      expect(await answer, name).toEqual({
        code: grpcStatus.UNAVAILABLE,
        details: expect.stringMatching(/not migrated/) as unknown,
      });
    }
    await migrate(bare.url, silentLogger());
    await waitFor(async () => (await healthCheck(bareServer!.address, '')) === 'SERVING', 10_000);
    await waitFor(async () => (await failure(quota.checkLimit({ userId: 'u' }))) === undefined);
    expect(await quota.checkLimit({ userId: 'u' })).toMatchObject({
      allowed: true,
      degraded: false,
    });
  });
});
