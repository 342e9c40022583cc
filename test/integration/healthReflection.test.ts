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

  it('answers UNIMPLEMENTED for RPCs a later release implements', async () => {
    const err = await server.client.quota
      .checkCommandQuota({ userId: 'u', commandType: 'shell', host: '', requestId: '', cost: 0 })
      .catch((e: { code: number }) => e);
    expect((err as { code: number }).code).toBe(grpc.status.UNIMPLEMENTED);
  });
});
