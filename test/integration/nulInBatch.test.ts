import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { status } from '@grpc/grpc-js';
import { QuotaCallError, RateLimitRule, Scope } from '@quota-authority/client';
import { CheckLimitRequest } from '../../clients/typescript/src/gen/quota/v1/quota_service.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';
import { startTestServer, type TestServer } from '../support/testServer.js';

let db: TestDatabase;
let server: TestServer;

const ORDINARY = 1500;
const WITH_NUL = 150;
/** Calls in flight at once: enough to fill batches, not so many that the server sheds. */
const IN_FLIGHT = 100;
const NUL_FIELDS = ['user_id', 'api_key', 'request_id'] as const;

beforeAll(async () => {
  db = await createTestDatabase();
  // A generous bound: a loaded two-core box must not turn a slow answer into `degraded`.
  server = await startTestServer(db.url, { QUOTA_DB_TIMEOUT_MS: '5000' });
  for (const [name, scope] of [
    ['users', Scope.SCOPE_USER],
    ['keys', Scope.SCOPE_API_KEY],
  ] as const) {
    await server.client.admin.upsertRateLimitRule({
      rule: RateLimitRule.fromPartial({
        name,
        scope,
        match: '*',
        limit: 1_000_000,
        window: { seconds: 3600, nanos: 0 },
      }),
    });
  }
});

afterAll(async () => {
  await server?.stop();
  await db?.drop();
});

/** Call i: every 11th carries a NUL in one of user_id, api_key, request_id. */
function call(i: number): { nul: (typeof NUL_FIELDS)[number] | undefined; req: CheckLimitRequest } {
  const nul = i % 11 === 5 ? NUL_FIELDS[Math.floor(i / 11) % NUL_FIELDS.length] : undefined;
  const mark = (field: string, value: string) => (nul === field ? `${value}\u0000x` : value);
  return {
    nul,
    req: CheckLimitRequest.fromPartial({
      userId: mark('user_id', `user-${i % 40}`),
      apiKey: mark('api_key', `key-${i % 7}`),
      requestId: mark('request_id', `req-${i}`),
    }),
  };
}

describe('a NUL byte among ordinary calls', () => {
  it(`answers ${WITH_NUL} NUL calls INVALID_ARGUMENT and decides all ${ORDINARY} others`, async () => {
    const calls = Array.from({ length: ORDINARY + WITH_NUL }, (_, i) => call(i));
    expect(calls.filter((c) => c.nul).length).toBe(WITH_NUL);
    const outcomes: {
      nul: string | undefined;
      code: number;
      field?: string;
      degraded?: boolean;
    }[] = [];
    let next = 0;
    const worker = async () => {
      while (next < calls.length) {
        const { nul, req } = calls[next++]!;
        try {
          const answer = await server.client.quota.checkLimit(req);
          outcomes.push({ nul, code: status.OK, degraded: answer.degraded });
          expect(answer.allowed).toBe(true);
        } catch (err) {
          if (!(err instanceof QuotaCallError)) throw err;
          outcomes.push({
            nul,
            code: err.code,
            field: String(err.metadata.get('invalid-field')[0]),
          });
        }
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker));

    const nulCalls = outcomes.filter((o) => o.nul);
    expect(nulCalls).toHaveLength(WITH_NUL);
    for (const o of nulCalls)
      expect(o).toEqual({ nul: o.nul, code: status.INVALID_ARGUMENT, field: o.nul });
    const ordinary = outcomes.filter((o) => !o.nul);
    expect(ordinary).toHaveLength(ORDINARY);
    expect(ordinary.filter((o) => o.code !== status.OK || o.degraded)).toEqual([]);
    // Each ordinary call counted once under each rule and its answer kept; nothing of a NUL call.
    const counted = await db.query<{ rule: string; n: string }>(
      `SELECT rule, sum(curr + prev)::text AS n FROM rate_limit_counters GROUP BY rule ORDER BY rule`,
    );
    expect(counted.rows).toEqual([
      { rule: 'keys', n: String(ORDINARY) },
      { rule: 'users', n: String(ORDINARY) },
    ]);
    const answers = await db.query<{ n: string }>(`SELECT count(*) AS n FROM idempotency_keys`);
    expect(Number(answers.rows[0]!.n)).toBe(ORDINARY);
  });
});
