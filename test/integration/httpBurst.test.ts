import { createServer, request as httpRequest, Agent, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CheckLimitRequest,
  connect,
  RateLimitRule,
  Scope,
  withRateLimit,
  type QuotaConnection,
} from '@quota-authority/client';
import {
  killServerProcess,
  startServerProcesses,
  type ServerProcess,
} from '../support/serverProcess.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';
import { TEST_ADMIN_TOKEN } from '../support/tokens.js';

// A flood from one IP, as the review measured it: the quota server in a process of its own,
// the gate with its default options, every request sent at once. The backlog the flood makes
// (the client's deadline, the server shedding, the gate's own cap) must never admit.
const REQUESTS = 2000;
const LIMIT = 50;

let db: TestDatabase;
let proc: ServerProcess;
let quota: QuotaConnection;
let http: Server;

beforeAll(async () => {
  db = await createTestDatabase();
  // One call at a time per connection: the client queues the rest against its deadline, so
  // the flood's backlog shows on two cores as on a busy server (the review saw it at the
  // defaults); the old gate admitted every request whose deadline passed in the queue.
  [proc] = (await startServerProcesses(db.url, [{ QUOTA_MAX_STREAMS_PER_CONNECTION: '1' }])) as [
    ServerProcess,
  ];
  const address = proc.client.raw.quota.getChannel().getTarget().replace(/^dns:/, '');
  quota = connect({ address, token: TEST_ADMIN_TOKEN });
});

afterAll(async () => {
  http?.closeAllConnections();
  await new Promise((resolve) => (http ? http.close(resolve) : resolve(undefined)));
  quota?.close();
  if (proc) killServerProcess(proc);
  await db?.drop();
});

/** One GET on a fresh connection: its status and Retry-After. */
function get(port: number, agent: Agent): Promise<{ status: number; retryAfter?: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: '/login', agent }, (res) => {
      res.resume();
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          ...(res.headers['retry-after'] !== undefined && {
            retryAfter: res.headers['retry-after'],
          }),
        }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

describe(`${REQUESTS} concurrent HTTP requests from one IP, a limit of ${LIMIT}, default options`, () => {
  it(`admit at most ${LIMIT}; the rest are refused (429, 503), never reach the handler`, async () => {
    await proc.client.admin.upsertRateLimitRule({
      rule: RateLimitRule.fromPartial({
        name: 'burst-ip',
        scope: Scope.SCOPE_IP,
        match: '*',
        limit: LIMIT,
        window: { seconds: 600, nanos: 0 },
      }),
    });
    // The channel is up before the flood: connecting is not what is measured.
    await quota.quota.checkLimit(CheckLimitRequest.fromPartial({ resource: 'warm-up' }));
    let handled = 0;
    const failures = new Map<string, number>();
    http = createServer(
      withRateLimit(
        (_req, res) => {
          handled++;
          res.end('ok');
        },
        {
          client: quota,
          // Only told, for the message of a failed expectation: the behaviour is the default.
          onError: (e) => {
            const name = e instanceof Error ? e.name : typeof e;
            failures.set(name, (failures.get(name) ?? 0) + 1);
          },
        },
      ),
    );
    // A backlog for the whole flood, so that connections are not refused before the gate.
    await new Promise<void>((resolve) =>
      http.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, resolve),
    );
    const { port } = http.address() as AddressInfo;
    const agent = new Agent({ keepAlive: false, maxSockets: Infinity });
    const answers = await Promise.all(Array.from({ length: REQUESTS }, () => get(port, agent)));
    agent.destroy();

    const byStatus = new Map<number, number>();
    for (const a of answers) byStatus.set(a.status, (byStatus.get(a.status) ?? 0) + 1);
    const admitted = byStatus.get(200) ?? 0;
    const summary = JSON.stringify({
      statuses: Object.fromEntries(byStatus),
      failures: Object.fromEntries(failures),
    });
    expect(admitted, summary).toBeLessThanOrEqual(LIMIT);
    expect(handled, summary).toBe(admitted);
    // Refused: denied (429), the backlog (503), or a failure of the call (500, rare).
    expect(
      [...byStatus.keys()].filter((s) => ![200, 429, 503, 500].includes(s)),
      summary,
    ).toEqual([]);
    // Every 429 and 503 says when to come back.
    const noRetryAfter = answers.filter(
      (a) => (a.status === 429 || a.status === 503) && !/^[1-9]\d*$/.test(a.retryAfter ?? ''),
    );
    expect(noRetryAfter, summary).toEqual([]);
  }, 60_000);
});
