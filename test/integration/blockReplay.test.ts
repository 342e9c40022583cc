import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RateLimitRule, Scope } from '@quota-authority/client';
import { CheckLimitRequest } from '../../clients/typescript/src/gen/quota/v1/quota_service.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';
import { startTestServer, type TestServer } from '../support/testServer.js';
import { waitFor } from '../support/waitFor.js';

// An attack block denies a key before any rule is asked, but a retry of a call decided before
// the block still gets its first answer: "a retry returns the first answer" holds for blocks too.

let db: TestDatabase;
let server: TestServer;

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db.url, {
    QUOTA_ATTACK_DENIALS: '3',
    QUOTA_BLOCK_S: '600',
  });
  await server.client.admin.upsertRateLimitRule({
    rule: RateLimitRule.fromPartial({
      name: 'one-an-hour',
      scope: Scope.SCOPE_USER,
      match: 'replayer',
      limit: 1,
      window: { seconds: 3600, nanos: 0 },
    }),
  });
});

afterAll(async () => {
  await server?.stop();
  await db?.drop();
});

const check = (requestId = '') =>
  server.client.quota.checkLimit(CheckLimitRequest.fromPartial({ userId: 'replayer', requestId }));

describe('a blocked key', () => {
  it('still gets the first answer to a retried request_id, and a block to a new one', async () => {
    const first = await check('before-block');
    expect(first.allowed).toBe(true);
    for (let i = 0; i < 5; i++) expect((await check()).allowed).toBe(false);
    // Denied more than 3 times in the window: flagged and blocked once detection has run.
    await waitFor(async () => {
      for (const name of ['violations-flush', 'attack-detection'])
        await server.client.admin.runTask({ name });
      return (await check()).limits[0]?.rule === 'attack-block';
    }, 10_000);

    const retried = await check('before-block');
    expect(retried).toEqual(first);
    const fresh = await check('after-block');
    expect(fresh.allowed).toBe(false);
    expect(fresh.limits.map((l) => l.rule)).toEqual(['attack-block']);
  });
});
