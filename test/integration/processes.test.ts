import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RateLimitRule, Scope } from '@quota-authority/client';
import { CheckLimitRequest } from '../../clients/typescript/src/gen/quota/v1/quota_service.js';
import {
  killIfRunning,
  killServerProcess,
  spawnServerProcess,
  startServerProcesses,
  type ServerProcess,
} from '../support/serverProcess.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';
import { waitFor } from '../support/waitFor.js';

// Two real server processes (the build that `npm ci` makes), as operators run them.
let db: TestDatabase;
const procs: ServerProcess[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  // Atomicity is the claim here, not latency on a box shared with other test files.
  const env = { QUOTA_DB_TIMEOUT_MS: '5000' };
  procs.push(...(await startServerProcesses(db.url, [env, env])));
});

afterAll(async () => {
  for (const p of procs) killServerProcess(p);
  await db?.drop();
});

describe('two server processes on one database', () => {
  it('admit exactly 50 of 200 concurrent calls on one key with a limit of 50', async () => {
    const [a, b] = procs as [ServerProcess, ServerProcess];
    await a.client.admin.upsertRateLimitRule({
      rule: RateLimitRule.fromPartial({
        name: 'hot-50',
        scope: Scope.SCOPE_USER,
        match: '*',
        limit: 50,
        window: { seconds: 60, nanos: 0 },
      }),
    });
    await waitFor(
      async () =>
        (await b.client.quota.checkLimit(CheckLimitRequest.fromPartial({ userId: 'probe' }))).limits
          .length > 0,
    );
    const answers = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        (i % 2 ? a : b).client.quota.checkLimit(CheckLimitRequest.fromPartial({ userId: 'hot' })),
      ),
    );
    expect(answers.filter((x) => x.degraded)).toHaveLength(0);
    expect(answers.filter((x) => x.allowed)).toHaveLength(50);
  });

  it('stop cleanly on SIGTERM', async () => {
    for (const p of procs) p.child.kill('SIGTERM');
    expect(await Promise.all(procs.map((p) => p.exited))).toEqual([0, 0]);
  });
});

describe('exit status', () => {
  it('is 1 when the server cannot start (its port is taken)', async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const { port } = taken.address() as net.AddressInfo;
    try {
      const { child, exited } = spawnServerProcess(db.url, port, { LOG_LEVEL: 'silent' });
      try {
        expect(await exited).toBe(1);
      } finally {
        // A server that hangs instead of exiting is the failure.
        killIfRunning(child);
      }
    } finally {
      taken.close();
    }
  });
});
