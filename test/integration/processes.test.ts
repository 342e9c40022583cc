import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  connect,
  RateLimitRule,
  Scope,
  type QuotaConnection,
} from '../../clients/typescript/src/index.js';
import { CheckLimitRequest } from '../../clients/typescript/src/gen/quota/v1/quota_service.js';
import { freePort } from '../../src/freePort.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';
import { waitFor } from '../support/waitFor.js';

// Two real server processes (the build that `npm ci` makes), as operators run them.
const main = fileURLToPath(new URL('../../dist/src/main.js', import.meta.url));

interface Proc {
  child: ChildProcess;
  client: QuotaConnection;
  exited: Promise<number | null>;
}

let db: TestDatabase;
const procs: Proc[] = [];

async function startProcess(url: string): Promise<Proc> {
  const port = await freePort();
  const child = spawn(process.execPath, [main, 'serve'], {
    env: {
      ...process.env,
      DATABASE_URL: url,
      QUOTA_HOST: '127.0.0.1',
      QUOTA_PORT: String(port),
      QUOTA_METRICS_PORT: '0',
      // Atomicity is the claim here, not latency on a box shared with other test files.
      QUOTA_DB_TIMEOUT_MS: '5000',
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  const client = connect(`127.0.0.1:${port}`, { timeoutMs: 10_000 });
  await waitFor(
    () =>
      client.admin.listRateLimitRules({ scope: Scope.SCOPE_UNSPECIFIED }, { timeoutMs: 500 }).then(
        () => true,
        () => false,
      ),
    20_000,
  );
  return { child, client, exited };
}

beforeAll(async () => {
  expect(existsSync(main), 'dist/ missing: run `npm run build`').toBe(true);
  db = await createTestDatabase();
  procs.push(...(await Promise.all([startProcess(db.url), startProcess(db.url)])));
});

afterAll(async () => {
  for (const p of procs) {
    p.client.close();
    if (p.child.exitCode === null) p.child.kill('SIGKILL');
  }
  await db?.drop();
});

describe('two server processes on one database', () => {
  it('admit exactly 50 of 200 concurrent calls on one key with a limit of 50', async () => {
    const [a, b] = procs as [Proc, Proc];
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
      const child = spawn(process.execPath, [main, 'serve'], {
        env: {
          ...process.env,
          DATABASE_URL: db.url,
          QUOTA_HOST: '127.0.0.1',
          QUOTA_PORT: String(port),
          QUOTA_METRICS_PORT: '0',
          LOG_LEVEL: 'silent',
        },
        stdio: 'ignore',
      });
      const code = await new Promise<number | null>((resolve) =>
        child.once('exit', (c) => resolve(c)),
      );
      expect(code).toBe(1);
    } finally {
      taken.close();
    }
  });
});
