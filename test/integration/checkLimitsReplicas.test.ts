import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RateLimitRule, Scope } from '@quota-authority/client';
import { CheckLimitRequest } from '../../clients/typescript/src/gen/quota/v1/quota_service.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';
import {
  killServerProcess,
  startServerProcesses,
  type ServerProcess,
} from '../support/serverProcess.js';
import { waitFor } from '../support/waitFor.js';

/** A burst of CheckLimits calls through two server processes on one database. */

const LIMIT = 50;
const CALLS = 40;
const CHECKS_PER_CALL = 25;

let db: TestDatabase;
let replicas: ServerProcess[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  // The claim is atomicity, not latency: a generous bound keeps a busy box from degrading.
  const env = { QUOTA_DB_TIMEOUT_MS: '5000' };
  replicas = await startServerProcesses(db.url, [env, env]);
});

afterAll(async () => {
  for (const r of replicas) killServerProcess(r);
  await db?.drop();
});

describe('CheckLimits on two replicas of one database', () => {
  it(`admits exactly ${LIMIT} of ${CALLS * CHECKS_PER_CALL} checks on one key`, async () => {
    const [a, b] = replicas as [ServerProcess, ServerProcess];
    await a.client.admin.upsertRateLimitRule({
      rule: RateLimitRule.fromPartial({
        name: 'hot-batch',
        scope: Scope.SCOPE_USER,
        match: '*',
        limit: LIMIT,
        window: { seconds: 60, nanos: 0 },
      }),
    });
    // Both replicas apply the rule before the burst.
    for (const r of replicas) {
      await waitFor(
        async () =>
          (await r.client.quota.checkLimit(CheckLimitRequest.fromPartial({ userId: 'probe' })))
            .limits.length === 1,
      );
    }
    const calls = Array.from({ length: CALLS }, (_, i) =>
      (i % 2 === 0 ? a : b).client.quota.checkLimits({
        checks: Array.from({ length: CHECKS_PER_CALL }, (_, j) =>
          // Some checks carry a request_id, none repeated: each counts once.
          CheckLimitRequest.fromPartial({ userId: 'hot', requestId: j % 3 ? '' : `${i}-${j}` }),
        ),
      }),
    );
    const answers = (await Promise.all(calls)).flatMap((r) =>
      r.results.map((x) => {
        if (x.result?.$case !== 'response') throw new Error(JSON.stringify(x));
        return x.result.value;
      }),
    );
    expect(answers).toHaveLength(CALLS * CHECKS_PER_CALL);
    expect(answers.filter((x) => x.degraded)).toHaveLength(0);
    expect(answers.filter((x) => x.allowed)).toHaveLength(LIMIT);
    const row = await db.query<{ curr: string }>(
      `SELECT curr FROM rate_limit_counters WHERE rule = 'hot-batch' AND key = 'hot'`,
    );
    expect(Number(row.rows[0]!.curr)).toBe(LIMIT);
  });
});
