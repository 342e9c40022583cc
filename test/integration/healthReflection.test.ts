import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import { createRequire } from 'node:module';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { healthCheck } from '../support/healthCheck.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';
import { startTestServer, type TestServer } from '../support/testServer.js';

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

function listServices(address: string, version: 'v1' | 'v1alpha'): Promise<string[]> {
  const require = createRequire(import.meta.url);
  const reflectionDir = path.join(path.dirname(require.resolve('@grpc/reflection')), '..', 'proto');
  const def = protoLoader.loadSync(`grpc/reflection/${version}/reflection.proto`, {
    includeDirs: [reflectionDir],
  });
  const pkg = grpc.loadPackageDefinition(def) as unknown as Record<
    string,
    Record<string, Record<string, Record<string, grpc.ServiceClientConstructor>>>
  >;
  const Ctor = pkg['grpc']!['reflection']![version]!['ServerReflection']!;
  const client = new Ctor(address, grpc.credentials.createInsecure()) as unknown as {
    serverReflectionInfo(): grpc.ClientDuplexStream<
      unknown,
      { listServicesResponse?: { service: { name: string }[] } }
    >;
    close(): void;
  };
  return new Promise((resolve, reject) => {
    const stream = client.serverReflectionInfo();
    stream.on('data', (res) => {
      resolve((res.listServicesResponse?.service ?? []).map((s: { name: string }) => s.name));
      stream.end();
      client.close();
    });
    stream.on('error', reject);
    stream.write({ listServices: '' });
  });
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
