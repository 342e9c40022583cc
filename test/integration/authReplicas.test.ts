import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { status } from '@grpc/grpc-js';
import { adminV1, connect, QuotaCallError } from '@quota-authority/client';
import { CheckLimitRequest } from '../../clients/typescript/src/gen/quota/v1/quota_service.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';
import { startTestServer, type TestServer } from '../support/testServer.js';

let db: TestDatabase;
let a: TestServer;
let b: TestServer;

beforeAll(async () => {
  db = await createTestDatabase();
  // Revocation is carried by the change feed: a generous database bound keeps a busy box from
  // turning the admin calls around it UNAVAILABLE.
  const env = { QUOTA_DB_TIMEOUT_MS: '5000' };
  [a, b] = await Promise.all([startTestServer(db.url, env), startTestServer(db.url, env)]);
});

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await db?.drop();
});

/** The status a CheckLimit call through `client` ends with (0 for OK). */
async function checkStatus(client: ReturnType<typeof connect>): Promise<number> {
  return client.quota.checkLimit(CheckLimitRequest.fromPartial({ resource: '/r' })).then(
    () => 0,
    (err: unknown) => (err instanceof QuotaCallError ? err.code : -1),
  );
}

describe('tokens on two replicas', () => {
  it('a token made on replica A works on B at once, and once revoked on A, B refuses it within a second', async () => {
    const made = await a.client.admin.createToken({
      name: 'executor',
      role: adminV1.Role.ROLE_CLIENT,
    });
    const onB = connect({ address: b.address, token: made.token });
    try {
      // Whether B's copy has it yet or B asks the database, the new token works at once.
      expect(await checkStatus(onB)).toBe(0);
      await a.client.admin.revokeToken({ id: made.info!.id });
      const revokedAt = Date.now();
      let code = 0;
      while (code === 0 && Date.now() - revokedAt < 1000) {
        code = await checkStatus(onB);
        if (code === 0) await new Promise((r) => setTimeout(r, 20));
      }
      expect(code).toBe(status.UNAUTHENTICATED);
      expect(Date.now() - revokedAt).toBeLessThan(1000);
    } finally {
      onB.close();
    }
  });

  it('the first admin token is stored once, however many replicas start with it', async () => {
    const rows = await db.query<{ n: string }>(
      `SELECT count(*) AS n FROM access_tokens WHERE name = 'QUOTA_ADMIN_TOKEN'`,
    );
    expect(rows.rows[0]!.n).toBe('1');
  });
});
