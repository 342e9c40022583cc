import { status as grpcStatus } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { typesV1, type QuotaCallError } from '@quota-authority/client';
import { silentLogger } from '../../src/log.js';
import { migrate } from '../../src/store/migrate.js';
import { healthCheck } from '../support/healthCheck.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';
import { waitFor } from '../support/waitFor.js';
import { startTestServer, type TestServer } from '../support/testServer.js';

let db: TestDatabase;
let bare: TestDatabase;
let older: TestDatabase;
let server: TestServer | undefined;
let bareServer: TestServer | undefined;
let olderServer: TestServer | undefined;

beforeAll(async () => {
  [db, bare, older] = await Promise.all([
    createTestDatabase({ empty: true }),
    createTestDatabase({ empty: true }),
    createTestDatabase(),
  ]);
});

afterAll(async () => {
  await Promise.all([server?.stop(), bareServer?.stop(), olderServer?.stop()]);
  await Promise.all([db?.drop(), bare?.drop(), older?.drop()]);
});

/** Renames every overload of function `from` to `to` in the `older` database. */
async function renameFunction(from: string, to: string): Promise<void> {
  const sigs = await older.query<{ sig: string }>(
    `SELECT p.oid::regprocedure::text AS sig FROM pg_proc p WHERE p.proname = $1`,
    [from],
  );
  expect(sigs.rowCount).toBeGreaterThan(0);
  for (const { sig } of sigs.rows) await older.query(`ALTER FUNCTION ${sig} RENAME TO ${to}`);
}

const DECISION_FUNCTIONS = ['quota_decide', 'command_quota_decide'];

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

  it('on a bare database answers UNAVAILABLE naming the migration (no token can be checked), never INTERNAL, until migrated; then decides', async () => {
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

  it('on a database of an older version answers decisions UNAVAILABLE, not the failure mode, until migrated', async () => {
    // What a replica of a newer version meets before `migrate` has run: its tables are there
    // (tokens and rules load), the newest migration is not applied, and the functions it would
    // bring are missing.
    const newest = await older.query<{ name: string; run_on: Date }>(
      'DELETE FROM pgmigrations WHERE id = (SELECT max(id) FROM pgmigrations) RETURNING name, run_on',
    );
    for (const f of DECISION_FUNCTIONS) await renameFunction(f, `${f}_elsewhere`);
    olderServer = await startTestServer(older.url);
    expect(await healthCheck(olderServer.address, '')).toBe('NOT_SERVING');
    const { quota, admin } = olderServer.client;
    await admin.upsertRateLimitRule({
      rule: typesV1.RateLimitRule.fromPartial({
        name: 'older-u',
        scope: typesV1.Scope.SCOPE_USER,
        match: 'u',
        limit: 5,
        window: { seconds: 60, nanos: 0 },
      }),
    });
    await admin.upsertCommandQuotaRule({
      rule: typesV1.CommandQuotaRule.fromPartial({ userId: 'u', commandType: 'shell', daily: 5 }),
    });
    const unavailable = {
      code: grpcStatus.UNAVAILABLE,
      details: expect.stringMatching(/not migrated/) as unknown,
    };
    // Refused once the rule applies (before, no rule means nothing to decide); the failure
    // mode would answer instead, and this wait would end without a refusal.
    await waitFor(async () => (await failure(quota.checkLimit({ userId: 'u' }))) !== undefined);
    expect(await failure(quota.checkLimit({ userId: 'u' }))).toEqual(unavailable);
    expect(await failure(quota.checkCommandQuota({ userId: 'u', commandType: 'shell' }))).toEqual(
      unavailable,
    );

    // Migrated (here: the functions back, and the migration recorded).
    for (const f of DECISION_FUNCTIONS) await renameFunction(`${f}_elsewhere`, f);
    await older.query('INSERT INTO pgmigrations (name, run_on) VALUES ($1, $2)', [
      newest.rows[0]!.name,
      newest.rows[0]!.run_on,
    ]);
    await waitFor(async () => (await healthCheck(olderServer!.address, '')) === 'SERVING', 10_000);
    expect(await quota.checkLimit({ userId: 'u' })).toMatchObject({
      allowed: true,
      degraded: false,
    });
    expect(await quota.checkCommandQuota({ userId: 'u', commandType: 'shell' })).toMatchObject({
      allowed: true,
      degraded: false,
    });
  });
});
