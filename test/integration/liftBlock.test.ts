import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  QuotaCallError,
  RateLimitRule,
  Scope,
  type QuotaConnection,
} from '@quota-authority/client';
import {
  AttackKind,
  LiftBlockRequest,
  LiftBlockResponse,
  Role,
} from '../../clients/typescript/src/gen/quota/v1/admin_service.js';
import { CheckLimitRequest } from '../../clients/typescript/src/gen/quota/v1/quota_service.js';
import { attacks, checkMany, upsertEverywhere } from '../support/auditCalls.js';
import { badUtf8 } from '../support/badUtf8.js';
import { expectRefused as refused } from '../support/expectRefused.js';
import { flushBuffers } from '../support/flushBuffers.js';
import { RawClient } from '../support/rawClient.js';
import { rowCounter, type RowCounts } from '../support/rowCounts.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';
import { startTestServer, type TestServer } from '../support/testServer.js';
import { TEST_ADMIN_TOKEN } from '../support/tokens.js';
import { waitFor } from '../support/waitFor.js';

// LiftBlock: an operator ends an attack block on every replica; the flag stays, and only what
// the key does after the lift can block it again.

const GENEROUS = 45_000;
const LIFT = '/quota.v1.AdminService/LiftBlock';
const BASE = { QUOTA_DB_TIMEOUT_MS: '5000', QUOTA_LOAD_INTERVAL_MS: '600000' };

const check = (client: QuotaConnection, r: Partial<CheckLimitRequest>) =>
  client.quota.checkLimit(CheckLimitRequest.fromPartial(r));

async function codeOf(call: Promise<unknown>): Promise<string> {
  const err = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  return err instanceof QuotaCallError ? (status[err.code] ?? String(err.code)) : 'OK';
}

/**
 * Writes what every replica buffered, then runs the detection once (on the first replica that
 * is not skipping it: another may be running its scheduled turn), so that it has seen the calls
 * answered before.
 */
async function detectNow(servers: readonly TestServer[]): Promise<void> {
  for (const s of servers) await flushBuffers(s.client);
  await waitFor(async () => {
    for (const s of servers)
      if ((await s.client.admin.runTask({ name: 'attack-detection' })).ran) return true;
    return false;
  }, GENEROUS);
}

/** Which rule denied the call, '' when it was admitted. */
const deniedBy = async (client: QuotaConnection, r: Partial<CheckLimitRequest>) => {
  const answer = await check(client, r);
  return answer.allowed ? '' : (answer.limits.find((l) => l.exceeded)?.rule ?? '?');
};

describe('two replicas', () => {
  let db: TestDatabase;
  let a: TestServer;
  let b: TestServer;

  beforeAll(async () => {
    db = await createTestDatabase();
    const env = {
      ...BASE,
      QUOTA_BLOCK_S: '3600',
      QUOTA_ATTACK_IDENTITIES: '5',
      QUOTA_ATTACK_DENIALS: '3',
    };
    [a, b] = await Promise.all([startTestServer(db.url, env), startTestServer(db.url, env)]);
  });

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await db?.drop();
  });

  it('lift an IPv6 network named by any of its addresses on both, and the flag stays', async () => {
    const address = '2001:db8:7:1::10';
    const network = '2001:db8:7:1::/64';
    const seen = await checkMany([a.client, b.client], 6, 2, (i) => ({
      ip: address,
      userId: `u${i}`,
    }));
    expect(seen).toMatchObject({ allowed: 6, errors: 0 });
    await detectNow([a, b]);
    for (const s of [a, b]) {
      await waitFor(async () => (await deniedBy(s.client, { ip: address })) !== '', GENEROUS);
      const answer = await check(s.client, { ip: address, userId: 'u0' });
      expect(answer.limits[0]).toMatchObject({
        rule: 'attack-block',
        scope: Scope.SCOPE_IP,
        key: network,
      });
    }

    const { lifted } = await a.client.admin.liftBlock({
      scope: 'ip',
      key: '2001:DB8:7:1:0:0:0:99',
    });
    const liftedAt = Date.now();
    expect(lifted).toMatchObject([
      { kind: AttackKind.ATTACK_KIND_IDENTITY_SPREAD, scope: 'ip', key: network, count: 6 },
    ]);
    const end = lifted[0]!.blockedUntil!;
    expect(end.getTime()).toBeLessThanOrEqual(liftedAt);
    // The replica that answered admits at once; the other within a second or so.
    expect(await deniedBy(a.client, { ip: address, userId: 'u0' })).toBe('');
    await waitFor(async () => (await deniedBy(b.client, { ip: address, userId: 'u1' })) === '');

    for (const s of [a, b]) {
      const flag = (await attacks(s.client)).find((x) => x.key === network);
      expect(flag).toMatchObject({ kind: AttackKind.ATTACK_KIND_IDENTITY_SPREAD, count: 6 });
      expect(flag!.blockedUntil).toEqual(end);
    }
    expect(await codeOf(b.client.admin.liftBlock({ scope: 'ip', key: network }))).toBe('NOT_FOUND');

    // The six users it was set for are still in the window: detection does not block again.
    await detectNow([a, b]);
    for (const s of [a, b])
      expect(await deniedBy(s.client, { ip: address, userId: 'u2' })).toBe('');
    expect((await attacks(a.client)).find((x) => x.key === network)!.blockedUntil).toEqual(end);
  }, 120_000);

  it('lift an API key named by its hash prefix; it is blocked again by denials after the lift only', async () => {
    const apiKey = 'qa_live_lift-block-key-0123456789';
    await upsertEverywhere(
      [a.client, b.client],
      RateLimitRule.fromPartial({
        name: 'keys',
        scope: Scope.SCOPE_API_KEY,
        match: '*',
        limit: 1,
        window: { seconds: 3600, nanos: 0 },
      }),
      (probe) => ({ apiKey: probe }),
    );
    expect(await checkMany([a.client, b.client], 5, 1, () => ({ apiKey }))).toMatchObject({
      allowed: 1,
      denied: 4,
    });
    await detectNow([a, b]);
    for (const s of [a, b])
      await waitFor(
        async () => (await deniedBy(s.client, { apiKey })) === 'attack-block',
        GENEROUS,
      );
    const flag = (await attacks(a.client)).find((x) => x.scope === 'api_key');
    expect(flag).toMatchObject({ kind: AttackKind.ATTACK_KIND_REPEATED_DENIALS, count: 4 });
    expect(flag!.key).toMatch(/^[A-Za-z0-9_-]{12}$/);
    expect(apiKey).not.toContain(flag!.key);

    const { lifted } = await b.client.admin.liftBlock({ scope: 'api_key', key: flag!.key });
    expect(lifted).toMatchObject([{ scope: 'api_key', key: flag!.key, count: 4 }]);
    // Denied by its rule again, not by the block: two denials after the lift.
    expect(await deniedBy(b.client, { apiKey })).toBe('keys');
    let onA = '';
    await waitFor(async () => (onA = await deniedBy(a.client, { apiKey })) !== 'attack-block');
    expect(onA).toBe('keys');

    // Four denials before the block, two after: not more than 3 since the lift.
    await detectNow([a, b]);
    expect(await deniedBy(a.client, { apiKey })).toBe('keys');
    expect(await deniedBy(b.client, { apiKey })).toBe('keys');
    // Four since the lift: blocked again on both.
    await detectNow([a, b]);
    for (const s of [a, b])
      await waitFor(
        async () => (await deniedBy(s.client, { apiKey })) === 'attack-block',
        GENEROUS,
      );
  }, 120_000);
});

describe('refusals', () => {
  let db: TestDatabase;
  let server: TestServer;
  let raw: RawClient;
  let counts: () => Promise<RowCounts>;

  const lift = (r: Partial<LiftBlockRequest>) =>
    Buffer.from(LiftBlockRequest.encode(LiftBlockRequest.fromPartial(r)).finish());

  /** Row counts of every table and the flags as stored. */
  async function written() {
    const flags = await db.query<{ flags: string | null }>(
      `SELECT string_agg(f::text, ',' ORDER BY f::text) AS flags FROM attack_flags f`,
    );
    return { rows: await counts(), flags: flags.rows[0]!.flags };
  }

  beforeAll(async () => {
    db = await createTestDatabase();
    server = await startTestServer(db.url, BASE);
    raw = new RawClient(server.address, TEST_ADMIN_TOKEN);
    counts = await rowCounter(db, () => flushBuffers(server.client));
    // A key blocked for an hour, and one whose block has ended.
    await db.query(
      `INSERT INTO attack_flags (kind, scope, key, count, first_seen, last_seen, blocked_until)
       VALUES ('identity_spread', 'ip', '192.0.2.44', 30, now(), now(), now() + interval '1 hour'),
              ('repeated_denials', 'user', 'ended', 9, now(), now(), now() - interval '1 minute')`,
    );
  });

  afterAll(async () => {
    raw?.close();
    await server?.stop();
    await db?.drop();
  });

  it.each<[string, Buffer]>([
    ['scope', lift({ scope: '', key: 'u' })],
    ['scope', lift({ scope: 'resource', key: 'u' })],
    ['scope', lift({ scope: 'IP', key: '192.0.2.44' })],
    ['scope', Buffer.concat([lift({ key: 'u' }), badUtf8(1)])],
    ['key', lift({ scope: 'user', key: '' })],
    ['key', lift({ scope: 'ip', key: '' })],
    ['key', lift({ scope: 'user', key: 'a\u0000' })],
    ['key', lift({ scope: 'user', key: 'k'.repeat(257) })],
    ['key', lift({ scope: 'user', key: 'é'.repeat(129) })],
    ['key', Buffer.concat([lift({ scope: 'user' }), badUtf8(2)])],
    ['key', lift({ scope: 'ip', key: 'not-an-ip' })],
    ['key', lift({ scope: 'ip', key: '192.0.2.44/32' })],
    ['key', lift({ scope: 'ip', key: '2001:db8::/48' })],
    ['key', lift({ scope: 'ip', key: '0xc0.0.2.44' })],
    ['key', lift({ scope: 'api_key', key: 'qa_live_a-raw-api-key-0123456789' })],
    ['key', lift({ scope: 'api_key', key: 'abc/def+ghi=' })],
  ])('refuses a bad %s (case %#), writing nothing', async (field, body) => {
    await refused(raw, written, LIFT, body, field);
  });

  it.each<[string, Partial<LiftBlockRequest>]>([
    ['an address never blocked', { scope: 'ip', key: '192.0.2.45' }],
    ['a key whose block has ended', { scope: 'user', key: 'ended' }],
    ['a blocked key under another scope', { scope: 'user', key: '192.0.2.44' }],
    ['a user id of 256 bytes', { scope: 'user', key: 'é'.repeat(128) }],
    ['an API key hash prefix', { scope: 'api_key', key: 'AbC_-0123456' }],
  ])('answers NOT_FOUND for %s, writing nothing', async (_what, request) => {
    const before = await written();
    const answer = await raw.unary(LIFT, lift(request));
    expect(status[answer.code], answer.details).toBe('NOT_FOUND');
    expect(await written()).toEqual(before);
  });

  it('refuses a viewer or client token, and the block stays', async () => {
    const tokens = await Promise.all(
      [Role.ROLE_VIEWER, Role.ROLE_CLIENT].map(
        async (role) => (await server.client.admin.createToken({ name: `r${role}`, role })).token,
      ),
    );
    const before = await written();
    for (const token of tokens) {
      const other = new RawClient(server.address, token);
      try {
        const answer = await other.unary(LIFT, lift({ scope: 'ip', key: '192.0.2.44' }));
        expect(status[answer.code]).toBe('PERMISSION_DENIED');
      } finally {
        other.close();
      }
    }
    expect(await written()).toEqual(before);
    expect(await deniedBy(server.client, { ip: '192.0.2.44' })).toBe('attack-block');
  });

  it('an admin lifts it, given in another spelling', async () => {
    const answer = await raw.unary(LIFT, lift({ scope: 'ip', key: '192.0.2.044' }));
    expect(status[answer.code], answer.details).toBe('OK');
    expect(LiftBlockResponse.decode(answer.body!).lifted).toMatchObject([
      { kind: AttackKind.ATTACK_KIND_IDENTITY_SPREAD, scope: 'ip', key: '192.0.2.44', count: 30 },
    ]);
    expect(await deniedBy(server.client, { ip: '192.0.2.44' })).toBe('');
  });
});
