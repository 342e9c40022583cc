import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { childrenOf } from '../support/childProcesses.js';
import { RateLimitRule, Scope } from '@quota-authority/client';
import { CheckLimitRequest } from '../../clients/typescript/src/gen/quota/v1/quota_service.js';
import {
  killServerProcess,
  startServerProcesses,
  type ServerProcess,
} from '../support/serverProcess.js';
import { OwnPostgres } from '../support/ownPostgres.js';

// Freezing a server stops every database on it, so this file runs its own PostgreSQL.
let own: OwnPostgres | undefined;
let open: ServerProcess;
let closed: ServerProcess;
const TIMEOUT_MS = 250;

const req = (r: Partial<CheckLimitRequest>) => CheckLimitRequest.fromPartial(r);

/** SIGSTOP/SIGCONT the postmaster and its backends: a server that keeps sockets open, silent. */
function signalCluster(signal: 'SIGSTOP' | 'SIGCONT'): void {
  const pid = own!.db.pid!;
  const children = childrenOf(pid);
  for (const p of [pid, ...children]) process.kill(p, signal);
}

beforeAll(async () => {
  own = await OwnPostgres.start('quota-freeze');
  // The errors the frozen database causes are expected here: only fatal ones are shown.
  const env = { QUOTA_DB_TIMEOUT_MS: String(TIMEOUT_MS), LOG_LEVEL: 'fatal' };
  // Server processes as operators run them: a server embedded in this test process would also
  // wait whenever the test runner itself is busy (379 ms against 300 seen once).
  [open, closed] = (await startServerProcesses(own.url, [
    { ...env, QUOTA_FAILURE_MODE: 'open' },
    { ...env, QUOTA_FAILURE_MODE: 'closed' },
  ])) as [ServerProcess, ServerProcess];
  await open.client.admin.upsertRateLimitRule({
    rule: RateLimitRule.fromPartial({
      name: 'u',
      scope: Scope.SCOPE_USER,
      match: '*',
      limit: 1000,
      window: { seconds: 60, nanos: 0 },
    }),
  });
});

afterAll(async () => {
  if (own) signalCluster('SIGCONT');
  for (const s of [open, closed]) if (s) killServerProcess(s);
  await own?.remove();
});

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const started = performance.now();
  const result = await fn();
  return [result, performance.now() - started];
}

describe('a database that stops answering', () => {
  it('gets the failure mode within the timeout, and normal answers after it thaws', async () => {
    // Both replicas have answered normally before the freeze.
    for (const s of [open, closed]) {
      await closed.client.admin.listRateLimitRules({ scope: Scope.SCOPE_UNSPECIFIED });
      const warm = await s.client.quota.checkLimit(req({ userId: 'x' }));
      expect(warm.degraded).toBe(false);
    }
    // Every degraded answer either replica gives: the statistics must count exactly these.
    let degraded = 0;
    const counted = <T extends { degraded: boolean }>(answer: T): T => {
      if (answer.degraded) degraded++;
      return answer;
    };
    signalCluster('SIGSTOP');
    try {
      // The first calls wait out the timeout; the breaker then answers at once.
      for (let i = 0; i < 5; i++) {
        const [[a, aMs], [b, bMs]] = await Promise.all([
          timed(() => open.client.quota.checkLimit(req({ userId: `frozen-${i}` })).then(counted)),
          timed(() => closed.client.quota.checkLimit(req({ userId: `frozen-${i}` })).then(counted)),
        ]);
        expect(a).toMatchObject({ allowed: true, degraded: true });
        expect(b).toMatchObject({ allowed: false, degraded: true });
        expect(aMs).toBeLessThanOrEqual(TIMEOUT_MS + 50);
        expect(bMs).toBeLessThanOrEqual(TIMEOUT_MS + 50);
      }
      // The operators' overview still answers, from what the replica holds, and says the
      // database is away; the statistics flush fails and keeps its counts.
      const dashboard = await open.client.admin.getDashboard({ hours: 1 });
      expect(dashboard.databaseAvailable).toBe(false);
      const flush = await open.client.admin.runTask({ name: 'stats-flush' });
      expect(flush.task?.lastError).not.toBe('');
    } finally {
      signalCluster('SIGCONT');
    }
    const thawed = performance.now();
    let normal = false;
    while (!normal && performance.now() - thawed < 5000) {
      const [a, b] = await Promise.all([
        open.client.quota.checkLimit(req({ userId: 'after' })).then(counted),
        closed.client.quota.checkLimit(req({ userId: 'after' })).then(counted),
      ]);
      normal = !a.degraded && !b.degraded && a.allowed && b.allowed;
      if (!normal) await new Promise((r) => setTimeout(r, 50));
    }
    expect(normal).toBe(true);
    expect(performance.now() - thawed).toBeLessThan(5000);
    // Nothing counted while the database was away is lost: once it is back, each replica's
    // flush writes what it kept.
    for (const s of [open, closed]) {
      const flushed = await s.client.admin.runTask({ name: 'stats-flush' });
      expect(flushed).toMatchObject({ ran: true, task: { lastError: '' } });
    }
    const stats = await own!.query<{ degraded: string }>(
      `SELECT coalesce(sum(degraded), 0)::text AS degraded FROM decision_stats
        WHERE kind = 'rule' AND name = '*'`,
    );
    expect(Number(stats[0]!.degraded)).toBe(degraded);
    expect(degraded).toBeGreaterThanOrEqual(10);
  });
  it('gives CheckCommandQuota the failure mode within the timeout too, and never acknowledges an execution it did not store', async () => {
    const cmd = (userId: string) => ({
      userId,
      commandType: 'shell',
      host: '',
      requestId: '',
      cost: 0,
    });
    for (const s of [open, closed]) {
      const warm = await s.client.quota.checkCommandQuota(cmd('x'));
      expect(warm).toMatchObject({ allowed: true, degraded: false });
    }
    signalCluster('SIGSTOP');
    let recorded: unknown;
    try {
      for (let i = 0; i < 3; i++) {
        const [[a, aMs], [b, bMs]] = await Promise.all([
          timed(() => open.client.quota.checkCommandQuota(cmd(`frozen-${i}`))),
          timed(() => closed.client.quota.checkCommandQuota(cmd(`frozen-${i}`))),
        ]);
        expect(a).toMatchObject({ allowed: true, degraded: true, reservationId: '' });
        expect(b).toMatchObject({ allowed: false, degraded: true, reason: 'QUOTA_UNAVAILABLE' });
        expect(aMs).toBeLessThanOrEqual(TIMEOUT_MS + 50);
        expect(bMs).toBeLessThanOrEqual(TIMEOUT_MS + 50);
      }
      recorded = await open.client.quota
        .recordExecution({
          reservationId: '',
          requestId: 'frozen-record',
          userId: 'frozen-0',
          commandType: 'shell',
          host: '',
          startedAt: undefined,
          duration: undefined,
          cpuPercent: 0,
          memoryBytes: 0,
          exitCode: 0,
          status: '',
        })
        .catch((err: { code?: number }) => err.code);
    } finally {
      signalCluster('SIGCONT');
    }
    // Not stored while the database was frozen: never acknowledged, UNAVAILABLE to be retried.
    expect(recorded).toBe(14);
    const thawed = performance.now();
    let normal = false;
    while (!normal && performance.now() - thawed < 5000) {
      const a = await open.client.quota.checkCommandQuota(cmd('after'));
      normal = a.allowed && !a.degraded && a.reservationId !== '';
      if (!normal) await new Promise((r) => setTimeout(r, 50));
    }
    expect(normal).toBe(true);
  });
});
