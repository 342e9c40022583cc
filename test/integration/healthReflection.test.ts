import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { healthCheck } from '../support/healthCheck.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';
import { startTestServer, type TestServer } from '../support/testServer.js';
import { reflectionClient } from '../support/reflectionClient.js';

let db: TestDatabase;
let server: TestServer;

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db.url);
});

afterAll(async () => {
  await server?.stop();
  await db?.drop();
});

async function listServices(address: string, version: 'v1' | 'v1alpha'): Promise<string[]> {
  const client = reflectionClient(address, version);
  try {
    const res = await client.ask({ listServices: '' });
    return (res.listServicesResponse?.service ?? []).map((s) => s.name);
  } finally {
    client.close();
  }
}

describe('health and reflection', () => {
  it('answers SERVING for the server and each service while the database is reachable', async () => {
    expect(await healthCheck(server.address, '')).toBe('SERVING');
    expect(await healthCheck(server.address, 'quota.v1.QuotaService')).toBe('SERVING');
    expect(await healthCheck(server.address, 'quota.v1.AdminService')).toBe('SERVING');
  });

  it.each(['v1', 'v1alpha'] as const)(
    'lists every service through reflection %s',
    async (version) => {
      const names = await listServices(server.address, version);
      expect(names).toEqual(
        expect.arrayContaining([
          'quota.v1.QuotaService',
          'quota.v1.AdminService',
          'grpc.health.v1.Health',
        ]),
      );
    },
  );

  it('answers CheckCommandQuota with a decision, no longer UNIMPLEMENTED', async () => {
    // Once a stub answering UNIMPLEMENTED: now a decision under the seeded default shell rule.
    const res = await server.client.quota.checkCommandQuota({
      userId: 'u',
      commandType: 'shell',
      host: '',
      requestId: '',
      cost: 0,
    });
    expect(res).toMatchObject({ allowed: true, reason: '', tier: 'default', degraded: false });
    expect(res.reservationId).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.periods.map((p) => [p.limit, p.used, p.remaining])).toEqual([
      [500, 1, 499],
      [3000, 1, 2999],
      [10000, 1, 9999],
    ]);
  });

  it('answers UNIMPLEMENTED for a method no service has', async () => {
    const client = new grpc.Client(server.address, grpc.credentials.createInsecure());
    try {
      const code = await new Promise<number>((resolve) =>
        client.makeUnaryRequest(
          '/quota.v1.QuotaService/NoSuchMethod',
          (b: Buffer) => b,
          (b: Buffer) => b,
          Buffer.alloc(0),
          (err) => resolve(err ? err.code : grpc.status.OK),
        ),
      );
      expect(code).toBe(grpc.status.UNIMPLEMENTED);
    } finally {
      client.close();
    }
  });
});
