import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { status } from '@grpc/grpc-js';
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import {
  QuotaInvalidArgumentError,
  RateLimitRule,
  Scope,
  type CheckLimitResult,
} from '@quota-authority/client';
import {
  CheckLimitRequest,
  CheckLimitsResponse,
} from '../../clients/typescript/src/gen/quota/v1/quota_service.js';
import { badUtf8 } from '../support/badUtf8.js';
import { RawClient } from '../support/rawClient.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';
import { startTestServer, type TestServer } from '../support/testServer.js';
import { TEST_ADMIN_TOKEN } from '../support/tokens.js';

/**
 * CheckLimits: each check decided all-or-nothing on its own, exactly as CheckLimit decides it;
 * a bad check is its own INVALID_ARGUMENT naming the field, the others are decided.
 */

let db: TestDatabase;
let server: TestServer;
let raw: RawClient;

const check = (r: Partial<CheckLimitRequest>) => CheckLimitRequest.fromPartial(r);
const checkLimits = (checks: Partial<CheckLimitRequest>[]) =>
  server.client.quota.checkLimits({ checks: checks.map(check) });

/** The answer of a result, failing the test for an error. */
function answer(r: CheckLimitResult | undefined) {
  if (r?.result?.$case !== 'response') throw new Error(`not an answer: ${JSON.stringify(r)}`);
  return r.result.value;
}

function error(r: CheckLimitResult | undefined) {
  if (r?.result?.$case !== 'error') throw new Error(`not an error: ${JSON.stringify(r)}`);
  return r.result.value;
}

/** Remaining of user `userId` under its one rule, asked with a CheckLimit that counts 1. */
async function remainingAfterOne(userId: string): Promise<number> {
  return (await server.client.quota.checkLimit(check({ userId }))).limits[0]!.remaining;
}

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db.url, { QUOTA_DB_TIMEOUT_MS: '5000' });
  raw = new RawClient(server.address, TEST_ADMIN_TOKEN);
  await server.client.admin.upsertRateLimitRule({
    rule: RateLimitRule.fromPartial({
      name: 'users-3',
      scope: Scope.SCOPE_USER,
      match: '*',
      limit: 3,
      window: { seconds: 3600, nanos: 0 },
    }),
  });
});

afterAll(async () => {
  raw?.close();
  await server?.stop();
  await db?.drop();
});

describe('CheckLimits', () => {
  it('counts checks on one key in the order given, each all-or-nothing', async () => {
    const { results } = await checkLimits([
      { userId: 'ordered' },
      { userId: 'ordered' },
      { userId: 'ordered', hits: 2 },
      { userId: 'ordered' },
      { userId: 'ordered' },
    ]);
    expect(results.map((r) => answer(r).allowed)).toEqual([true, true, false, true, false]);
    expect(results.map((r) => answer(r).limits[0]!.remaining)).toEqual([2, 1, 1, 0, 0]);
    // The denied check of 2 hits counted nothing, the denied last one neither.
    const row = await db.query<{ curr: string }>(
      `SELECT curr FROM rate_limit_counters WHERE rule = 'users-3' AND key = 'ordered'`,
    );
    expect(Number(row.rows[0]!.curr)).toBe(3);
  });

  it('counts checks on one counter in the order given, across the batches of a large call', async () => {
    await server.client.admin.upsertRateLimitRule({
      rule: RateLimitRule.fromPartial({
        name: 'ordered-resource',
        scope: Scope.SCOPE_RESOURCE,
        match: 'ordered-hot',
        limit: 300,
        window: { seconds: 3600, nanos: 0 },
      }),
    });
    // 1,001 counters: more than one statement holds, and every check is on the hot one.
    const { results } = await checkLimits(
      Array.from({ length: 1000 }, (_, i) => ({
        userId: `ordered-u${i}`,
        resource: 'ordered-hot',
      })),
    );
    const allowed = results.map((r) => answer(r).allowed);
    expect(allowed.indexOf(false)).toBe(300);
    expect(allowed.lastIndexOf(true)).toBe(299);
  });

  it("answers a check that ends early inside its item as that item's error, whatever the others", async () => {
    const item = (r: Partial<CheckLimitRequest>) =>
      Buffer.from(CheckLimitRequest.encode(check(r)).finish());
    const body = (items: Buffer[]) => {
      const w = new BinaryWriter();
      for (const i of items) w.uint32(10).bytes(i);
      return Buffer.from(w.finish());
    };
    // One item on the wire: a check, a zero tag, then bytes that read as another item.
    const hiding = Buffer.concat([
      item({ userId: 'early-outer' }),
      Buffer.from([0]),
      body([item({ userId: 'early-hidden' })]),
    ]);
    const notUtf8 = Buffer.concat([item({ userId: 'early-x' }), badUtf8(2)]);
    for (const items of [[hiding], [hiding, notUtf8]]) {
      const reply = await raw.unary('/quota.v1.QuotaService/CheckLimits', body(items));
      expect(reply.code).toBe(status.OK);
      const { results } = CheckLimitsResponse.decode(reply.body!);
      expect(results).toHaveLength(items.length);
      expect(error(results[0])).toMatchObject({ code: status.INVALID_ARGUMENT, field: 'request' });
    }
    expect(await remainingAfterOne('early-outer')).toBe(2);
    expect(await remainingAfterOne('early-hidden')).toBe(2);
  });

  it('answers a bad check with its own INVALID_ARGUMENT naming the field, and decides the rest', async () => {
    const { results } = await checkLimits([
      { userId: 'good-1' },
      { userId: 'bad-nul\u0000' },
      { userId: 'bad-hits', hits: 2_000_000 },
      { userId: 'x'.repeat(300) },
      { path: '/no-identifier' },
      { userId: 'good-2', requestId: 'r\u0000' },
      { userId: 'good-1' },
    ]);
    expect(results).toHaveLength(7);
    expect(answer(results[0]).limits[0]!.remaining).toBe(2);
    expect(answer(results[6]).limits[0]!.remaining).toBe(1);
    const errors = [1, 2, 3, 4, 5].map((i) => error(results[i]));
    expect(errors.map((e) => e.code)).toEqual(Array(5).fill(status.INVALID_ARGUMENT));
    expect(errors.map((e) => e.field)).toEqual([
      'user_id',
      'hits',
      'user_id',
      'ip|user_id|api_key|resource',
      'request_id',
    ]);
    expect(errors[1]!.message).toMatch(/^hits: /);
    // Nothing was counted for a refused check.
    expect(await remainingAfterOne('bad-hits')).toBe(2);
    expect(await remainingAfterOne('good-2')).toBe(2);
  });

  it('answers a check that is not UTF-8 with its own INVALID_ARGUMENT, and decides the rest', async () => {
    const item = (r: Partial<CheckLimitRequest>, tail: Buffer = Buffer.alloc(0)) =>
      Buffer.concat([Buffer.from(CheckLimitRequest.encode(check(r)).finish()), tail]);
    const w = new BinaryWriter();
    w.uint32(10).bytes(item({ userId: 'utf8-good' }));
    w.uint32(10).bytes(item({ userId: 'utf8-bad' }, badUtf8(2)));
    w.uint32(10).bytes(item({ userId: 'utf8-good' }));
    const reply = await raw.unary('/quota.v1.QuotaService/CheckLimits', Buffer.from(w.finish()));
    expect(reply.code).toBe(status.OK);
    const { results } = CheckLimitsResponse.decode(reply.body!);
    expect(answer(results[0]).limits[0]!.remaining).toBe(2);
    expect(error(results[1])).toMatchObject({ code: status.INVALID_ARGUMENT, field: 'user_id' });
    expect(answer(results[2]).limits[0]!.remaining).toBe(1);
    expect(await remainingAfterOne('utf8-bad')).toBe(2);
  });

  it('refuses no checks, or more than 1,000, as a whole naming checks', async () => {
    for (const n of [0, 1001]) {
      const err = await checkLimits(Array.from({ length: n }, () => ({ userId: 'many' }))).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(QuotaInvalidArgumentError);
      expect((err as QuotaInvalidArgumentError).field).toBe('checks');
    }
    expect(await remainingAfterOne('many')).toBe(2);
    const { results } = await checkLimits(
      Array.from({ length: 1000 }, (_, i) => ({ userId: `many-${i % 10}` })),
    );
    expect(results.filter((r) => answer(r).allowed)).toHaveLength(30);
  });

  it('answers a repeated request_id with its first answer, within a call and across calls', async () => {
    const checks = [
      { userId: 'idem', requestId: 'r1' },
      { userId: 'idem', requestId: 'r1' },
      { userId: 'idem', requestId: 'r2' },
    ];
    const first = (await checkLimits(checks)).results.map((r) => answer(r).limits[0]!.remaining);
    expect(first).toEqual([2, 2, 1]);
    const again = (await checkLimits(checks)).results.map((r) => answer(r).limits[0]!.remaining);
    expect(again).toEqual([2, 2, 1]);
    expect(await remainingAfterOne('idem')).toBe(0);
  });

  it('matches what CheckLimit answers for the same requests', async () => {
    const single = await server.client.quota.checkLimit(check({ userId: 'same-a', hits: 2 }));
    const [batched] = (await checkLimits([{ userId: 'same-b', hits: 2 }])).results;
    const strip = (a: typeof single) => ({
      ...a,
      limits: a.limits.map((l) => ({ ...l, key: '', resetAfter: undefined })),
    });
    expect(strip(answer(batched))).toEqual(strip(single));
  });
});
