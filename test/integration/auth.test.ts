import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { status } from '@grpc/grpc-js';
import { adminV1, connect, QuotaCallError, type QuotaConnection } from '@quota-authority/client';
import { AdminServiceService } from '../../clients/typescript/src/gen/quota/v1/admin_service.js';
import { QuotaServiceService } from '../../clients/typescript/src/gen/quota/v1/quota_service.js';
import { requiredRole } from '../../src/grpc/methodRoles.js';
import { healthCheck } from '../support/healthCheck.js';
import { callStatus, methodsOf } from '../support/rawCalls.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';
import { startTestServer, type TestServer } from '../support/testServer.js';
import { TEST_ADMIN_TOKEN } from '../support/tokens.js';

const { Role } = adminV1;
const ALL = methodsOf(QuotaServiceService, AdminServiceService);
const ADMIN_METHODS = methodsOf(AdminServiceService);
const AUTH_CODES = [status.UNAUTHENTICATED, status.PERMISSION_DENIED];
/** Who may call is the claim here, not latency: a busy box must not turn answers UNAVAILABLE. */
const SLOW_DB = { QUOTA_DB_TIMEOUT_MS: '5000' };

let db: TestDatabase;
let server: TestServer;
let clientToken: string;
let viewerToken: string;

const bearer = (token: string) => `Bearer ${token}`;

async function code(call: Promise<unknown>): Promise<number> {
  const err = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  return err instanceof QuotaCallError ? err.code : 0;
}

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db.url, SLOW_DB);
  clientToken = (
    await server.client.admin.createToken({ name: 'executors', role: Role.ROLE_CLIENT })
  ).token;
  viewerToken = (
    await server.client.admin.createToken({ name: 'dashboards', role: Role.ROLE_VIEWER })
  ).token;
});

afterAll(async () => {
  await server?.stop();
  await db?.drop();
});

describe('authentication, on every method of both services', () => {
  it('the methods are the ones the generated definitions name', () => {
    expect(ALL.length).toBeGreaterThan(15);
    expect(ALL.map((m) => m.path)).toEqual(
      expect.arrayContaining([
        'quota.v1.QuotaService/CheckLimit',
        'quota.v1.QuotaService/WatchLoad',
        'quota.v1.AdminService/DeleteRateLimitRule',
        'quota.v1.AdminService/CreateToken',
      ]),
    );
  });

  it.each(ALL.map((m) => [m.path, m] as const))(
    '%s answers UNAUTHENTICATED with no token, a wrong one and a malformed header',
    async (_path, method) => {
      expect(await callStatus(server.address, method, undefined)).toBe(status.UNAUTHENTICATED);
      expect(await callStatus(server.address, method, bearer(`qa_${'x'.repeat(43)}`))).toBe(
        status.UNAUTHENTICATED,
      );
      expect(await callStatus(server.address, method, TEST_ADMIN_TOKEN)).toBe(
        status.UNAUTHENTICATED,
      );
      expect(await callStatus(server.address, method, `Basic ${TEST_ADMIN_TOKEN}`)).toBe(
        status.UNAUTHENTICATED,
      );
    },
  );

  it.each(ADMIN_METHODS.map((m) => [m.path, m] as const))(
    '%s answers PERMISSION_DENIED to a client token',
    async (_path, method) => {
      expect(await callStatus(server.address, method, bearer(clientToken))).toBe(
        status.PERMISSION_DENIED,
      );
    },
  );

  it.each(ADMIN_METHODS.map((m) => [m.path, m] as const))(
    '%s: a viewer token is refused exactly when the method writes',
    async (path, method) => {
      const [service, name] = path.split('/') as [string, string];
      const got = await callStatus(server.address, method, bearer(viewerToken));
      if (requiredRole(service, name) === 'admin') expect(got).toBe(status.PERMISSION_DENIED);
      else expect(AUTH_CODES).not.toContain(got);
    },
  );

  it('admits a client token to every QuotaService method and an admin token everywhere', async () => {
    for (const method of methodsOf(QuotaServiceService))
      expect(AUTH_CODES).not.toContain(
        await callStatus(server.address, method, bearer(clientToken)),
      );
    for (const method of ALL)
      expect(AUTH_CODES).not.toContain(
        await callStatus(server.address, method, bearer(TEST_ADMIN_TOKEN)),
      );
  });

  it('needs no token for health and reflection', async () => {
    expect(await healthCheck(server.address, '')).toBe('SERVING');
    expect(await healthCheck(server.address, 'quota.v1.AdminService')).toBe('SERVING');
  });
});

describe('token administration', () => {
  let viewer: QuotaConnection;

  beforeAll(() => {
    viewer = connect({ address: server.address, token: viewerToken });
  });

  afterAll(() => viewer?.close());

  it('lists tokens without the tokens themselves, and revokes one at once on this replica', async () => {
    const made = await server.client.admin.createToken({
      name: 'short-lived',
      role: Role.ROLE_CLIENT,
    });
    expect(made.token).toMatch(/^qa_[A-Za-z0-9_-]{43}$/);
    expect(made.info).toMatchObject({ name: 'short-lived', role: Role.ROLE_CLIENT });
    const listed = (await viewer.admin.listTokens({})).tokens;
    expect(listed.map((t) => t.name)).toEqual(
      expect.arrayContaining(['QUOTA_ADMIN_TOKEN', 'executors', 'dashboards', 'short-lived']),
    );
    expect(JSON.stringify(listed)).not.toContain(made.token);

    const user = connect({ address: server.address, token: made.token });
    try {
      // A client token may read a user's quota status.
      expect(await code(user.quota.getQuotaStatus({ userId: 'u' }))).toBe(status.OK);
      const revoked = await server.client.admin.revokeToken({ id: made.info!.id });
      expect(revoked.token!.revokedAt).toBeInstanceOf(Date);
      expect(await code(user.quota.getQuotaStatus({ userId: 'u' }))).toBe(status.UNAUTHENTICATED);
      // Revoking again changes nothing.
      const again = await server.client.admin.revokeToken({ id: made.info!.id });
      expect(again.token!.revokedAt).toEqual(revoked.token!.revokedAt);
    } finally {
      user.close();
    }
  });

  it('answers INVALID_ARGUMENT for a missing role or name and NOT_FOUND for an unknown id', async () => {
    expect(
      await code(server.client.admin.createToken({ name: 'x', role: Role.ROLE_UNSPECIFIED })),
    ).toBe(status.INVALID_ARGUMENT);
    expect(await code(server.client.admin.createToken({ name: '', role: Role.ROLE_ADMIN }))).toBe(
      status.INVALID_ARGUMENT,
    );
    expect(
      await code(server.client.admin.createToken({ name: 'a\u0000b', role: Role.ROLE_ADMIN })),
    ).toBe(status.INVALID_ARGUMENT);
    expect(await code(server.client.admin.revokeToken({ id: 987_654 }))).toBe(status.NOT_FOUND);
  });
});

describe('QUOTA_ADMIN_TOKEN', () => {
  it('stays revoked across a restart that configures it again', async () => {
    const configured = `qa_configured-${'k'.repeat(40)}`;
    const first = await startTestServer(db.url, { ...SLOW_DB, QUOTA_ADMIN_TOKEN: configured });
    let id: number;
    try {
      const listed = (await first.client.admin.listTokens({})).tokens;
      id = listed.filter((t) => t.name === 'QUOTA_ADMIN_TOKEN').at(-1)!.id;
      await server.client.admin.revokeToken({ id });
    } finally {
      await first.stop();
    }
    const second = await startTestServer(db.url, { ...SLOW_DB, QUOTA_ADMIN_TOKEN: configured });
    try {
      expect(await code(second.client.admin.listTokens({}))).toBe(status.UNAUTHENTICATED);
      const rows = await db.query<{ n: string }>(
        `SELECT count(*) AS n FROM access_tokens WHERE id = $1 AND revoked_at IS NOT NULL`,
        [id],
      );
      expect(rows.rows[0]!.n).toBe('1');
    } finally {
      await second.stop();
    }
  });
});
