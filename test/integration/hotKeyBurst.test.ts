import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  connect,
  QuotaCallError,
  RateLimitRule,
  Scope,
  type QuotaConnection,
} from '@quota-authority/client';
import { CheckLimitRequest } from '../../clients/typescript/src/gen/quota/v1/quota_service.js';
import {
  killServerProcess,
  startServerProcesses,
  type ServerProcess,
} from '../support/serverProcess.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';
import { waitFor } from '../support/waitFor.js';

// A burst on one hot key, as issue 12 measured it: two replicas in processes of their own, with
// the default timeout, on a healthy database, every call sent at once. Each call is answered by
// a decision or shed; none by the failure mode, which is for a database that does not answer.
const CALLS = 2000;
const LIMIT = 50;
const TOKEN = 'hot-key-burst-test-token-0123456789abcdef';

let db: TestDatabase;
const procs: ServerProcess[] = [];
const clients: QuotaConnection[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  procs.push(
    ...(await startServerProcesses(db.url, [
      { QUOTA_ADMIN_TOKEN: TOKEN },
      { QUOTA_ADMIN_TOKEN: TOKEN },
    ])),
  );
  for (const p of procs) {
    const address = p.client.raw.quota.getChannel().getTarget().replace(/^dns:/, '');
    // The claim is about the server's answers: the client waits for every one.
    clients.push(connect({ address: address, token: TOKEN, deadlineMs: 60_000 }));
  }
});

afterAll(async () => {
  for (const c of clients) c.close();
  for (const p of procs) killServerProcess(p);
  await db?.drop();
});

describe(`${CALLS} concurrent calls on one key with a limit of ${LIMIT}, two replicas`, () => {
  it(`admit exactly ${LIMIT}, answer none degraded, and deny or shed the rest`, async () => {
    const [a, b] = procs as [ServerProcess, ServerProcess];
    await a.client.admin.upsertRateLimitRule({
      rule: RateLimitRule.fromPartial({
        name: 'burst',
        scope: Scope.SCOPE_USER,
        match: '*',
        limit: LIMIT,
        window: { seconds: 600, nanos: 0 },
      }),
    });
    await waitFor(
      async () =>
        (await b.client.quota.checkLimit(CheckLimitRequest.fromPartial({ userId: 'probe' }))).limits
          .length === 1,
    );
    // Both connections up before the burst: connecting is not what is measured.
    await Promise.all(
      clients.map((c) => c.quota.checkLimit(CheckLimitRequest.fromPartial({ userId: 'warm' }))),
    );
    const hints: number[] = [];
    const outcomes: string[] = await Promise.all(
      Array.from({ length: CALLS }, (_, i) =>
        clients[i % clients.length]!.quota.checkLimit(
          CheckLimitRequest.fromPartial({ userId: 'hot' }),
        ).then(
          (r) => (r.degraded ? 'degraded' : r.allowed ? 'allowed' : 'denied'),
          (err: unknown) => {
            if (err instanceof QuotaCallError && err.code === status.RESOURCE_EXHAUSTED) {
              const hint = err.metadata.get('grpc-retry-pushback-ms')[0];
              expect(err.metadata.get('retry-after-ms')).toEqual([hint]);
              hints.push(Number(hint));
              return 'shed';
            }
            return `error: ${String(err)}`;
          },
        ),
      ),
    );
    const count = (o: string) => outcomes.filter((x) => x === o).length;
    const tally = Object.fromEntries([...new Set(outcomes)].map((o) => [o, count(o)]));
    console.log(`hot key burst: ${JSON.stringify(tally)}`);
    expect(count('degraded')).toBe(0);
    expect(count('allowed')).toBe(LIMIT);
    expect(count('allowed') + count('denied') + count('shed')).toBe(CALLS);
    expect(hints.every((ms) => Number.isInteger(ms) && ms > 0)).toBe(true);
    // What the callers were told is what was counted.
    const row = await db.query<{ curr: string }>(
      `SELECT curr FROM rate_limit_counters WHERE rule = 'burst' AND key = 'hot'`,
    );
    expect(Number(row.rows[0]!.curr)).toBe(LIMIT);
  });
});
