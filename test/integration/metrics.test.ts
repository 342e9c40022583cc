import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RateLimitRule, Scope, typesV1 } from '@quota-authority/client';
import {
  CheckCommandQuotaRequest,
  CheckLimitRequest,
  type CheckLimitResponse,
} from '../../clients/typescript/src/gen/quota/v1/quota_service.js';
import { freePort } from '../../src/freePort.js';
import { report } from '../support/loadStreams.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';
import { startTestServer, type TestServer } from '../support/testServer.js';
import { waitFor } from '../support/waitFor.js';

// A real server scraped over HTTP as Prometheus does. It reaches PostgreSQL through a TCP relay
// of this file's own, so that the database can be taken away from this server alone.

let db: TestDatabase;
let relay: Relay;
let server: TestServer;
let metricsPort: number;

const checkLimit = (r: Partial<CheckLimitRequest>) =>
  server.client.quota.checkLimit(CheckLimitRequest.fromPartial(r));

/** Forwards 127.0.0.1:`port` to the database; `cut` refuses and drops every connection. */
interface Relay {
  readonly port: number;
  open(): Promise<void>;
  cut(): Promise<void>;
}

async function startRelay(target: URL): Promise<Relay> {
  const port = await freePort();
  const sockets = new Set<Socket>();
  let listening: Server | undefined;
  const relay: Relay = {
    port,
    open: () =>
      new Promise((resolve, reject) => {
        const s = createServer((client) => {
          const upstream = connect(Number(target.port || 5432), target.hostname);
          const drop = () => {
            client.destroy();
            upstream.destroy();
            sockets.delete(client);
            sockets.delete(upstream);
          };
          for (const socket of [client, upstream]) {
            sockets.add(socket);
            socket.on('error', drop).on('close', drop);
          }
          client.pipe(upstream).pipe(client);
        });
        s.once('error', reject);
        s.listen(port, '127.0.0.1', () => {
          listening = s;
          resolve();
        });
      }),
    cut: async () => {
      const s = listening;
      listening = undefined;
      for (const socket of sockets) socket.destroy();
      if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
    },
  };
  await relay.open();
  return relay;
}

/** One scrape: the text, and its samples looked up by name and labels. */
interface Scrape {
  readonly text: string;
  /** The sample of `name` whose labels include `labels`; undefined when there is none. */
  value(name: string, labels?: Record<string, string>): number | undefined;
}

const SAMPLE =
  /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*)\})? (\S+)$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)"/g;

async function scrape(): Promise<Scrape> {
  const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  const samples: { name: string; labels: Record<string, string>; value: number }[] = [];
  const typed = new Set<string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const comment = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (comment) {
      if (comment[1] === 'TYPE') {
        expect(comment[3]).toMatch(/^(counter|gauge|histogram|summary|untyped)$/);
        typed.add(comment[2]!);
      }
      continue;
    }
    const m = SAMPLE.exec(line);
    expect(m, `not a sample line: ${line}`).not.toBeNull();
    const [, name, labelText, raw] = m!;
    // As Prometheus reads values (Go's ParseFloat): NaN and Inf in any case. prom-client
    // writes a NaN as "Nan" (the event-loop lag before its first sample).
    const value = /^nan$/i.test(raw!) ? NaN : Number(raw!.replace(/inf$/i, 'Infinity'));
    expect(Number.isNaN(value) && !/^nan$/i.test(raw!), `bad value: ${line}`).toBe(false);
    const family = name!.replace(/_(bucket|sum|count)$/, '');
    expect(typed.has(name!) || typed.has(family), `no TYPE before ${line}`).toBe(true);
    const labels: Record<string, string> = {};
    for (const l of (labelText ?? '').matchAll(LABEL)) labels[l[1]!] = l[2]!;
    samples.push({ name: name!, labels, value });
  }
  return {
    text,
    value: (name, labels = {}) =>
      samples.find(
        (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
      )?.value,
  };
}

type Result = 'allowed' | 'denied' | 'shadow_denied' | 'degraded';

/** Per rule ("*": the call) and result, what the client's answers say was decided. */
function tallyAnswers(answers: readonly CheckLimitResponse[]): Map<string, number> {
  const out = new Map<string, number>();
  const add = (rule: string, result: Result) => {
    const key = `${rule} ${result}`;
    out.set(key, (out.get(key) ?? 0) + 1);
  };
  for (const a of answers) {
    expect(a.degraded).toBe(false);
    add('*', a.allowed ? 'allowed' : 'denied');
    for (const l of a.limits) {
      if (l.exceeded) add(l.rule, l.shadow ? 'shadow_denied' : 'denied');
      else if (a.allowed) add(l.rule, 'allowed');
    }
  }
  return out;
}

const decisions = (s: Scrape, source: string, rule: string, result: Result) =>
  s.value('quota_decisions_total', { source, rule, result }) ?? 0;

beforeAll(async () => {
  db = await createTestDatabase();
  relay = await startRelay(new URL(db.url));
  const url = new URL(db.url);
  url.hostname = '127.0.0.1';
  url.port = String(relay.port);
  metricsPort = await freePort();
  server = await startTestServer(url.toString(), {
    QUOTA_METRICS_PORT: String(metricsPort),
    // Room for a burst beside other test files: these answers are to be decided, not degraded.
    QUOTA_DB_TIMEOUT_MS: '2000',
  });
  expect(server.app.metricsPort).toBe(metricsPort);
  const rule = (r: Partial<RateLimitRule>) =>
    server.client.admin.upsertRateLimitRule({
      rule: RateLimitRule.fromPartial({ match: '*', window: { seconds: 60, nanos: 0 }, ...r }),
    });
  await rule({ name: 'm-user', scope: Scope.SCOPE_USER, limit: 5 });
  await rule({ name: 'm-ip-shadow', scope: Scope.SCOPE_IP, limit: 30, shadow: true });
});

afterAll(async () => {
  await relay?.open().catch(() => undefined);
  await server?.stop();
  await relay?.cut();
  await db?.drop();
});

describe('GET /metrics', () => {
  it('counts each check of a CheckLimits call answered with an error, by its status code', async () => {
    const before = await scrape();
    const { results } = await server.client.quota.checkLimits({
      checks: [
        { userId: 'metrics-item-ok' },
        { userId: 'metrics-item-\u0000' },
        { userId: 'metrics-item-hits', hits: 2_000_000 },
      ].map((c) => CheckLimitRequest.fromPartial(c)),
    });
    expect(results.map((r) => r.result?.$case)).toEqual(['response', 'error', 'error']);
    const after = await scrape();
    const errors = (s: Scrape, code: string) =>
      s.value('quota_batch_item_errors_total', { method: 'CheckLimits', code }) ?? 0;
    expect(errors(after, '3') - errors(before, '3')).toBe(2);
    expect(errors(after, '8') - errors(before, '8')).toBe(0);
  });

  it('moves decisions by rule and result by exactly what a burst of CheckLimit calls saw', async () => {
    const before = await scrape();
    const calls: Promise<CheckLimitResponse>[] = [];
    for (let user = 0; user < 20; user++) {
      for (let i = 0; i < 10; i++) calls.push(checkLimit({ userId: `u${user}`, ip: '10.9.8.7' }));
    }
    const answers = await Promise.all(calls);
    const after = await scrape();

    const seen = tallyAnswers(answers);
    // 5 of each user's 10 admitted; the shadow rule on the one IP ran out on the way.
    expect(seen.get('* allowed')).toBe(100);
    expect(seen.get('* denied')).toBe(100);
    expect(seen.get('m-ip-shadow shadow_denied')).toBeGreaterThan(0);
    for (const rule of ['*', 'm-user', 'm-ip-shadow']) {
      for (const result of ['allowed', 'denied', 'shadow_denied', 'degraded'] as const) {
        const moved =
          decisions(after, 'check_limit', rule, result) -
          decisions(before, 'check_limit', rule, result);
        expect(moved, `${rule} ${result}`).toBe(seen.get(`${rule} ${result}`) ?? 0);
      }
    }

    const count = (s: Scrape) => s.value('quota_decision_batch_size_count', { store: 'limits' });
    const sum = (s: Scrape) => s.value('quota_decision_batch_size_sum', { store: 'limits' });
    expect(count(after)! - (count(before) ?? 0)).toBeGreaterThanOrEqual(1);
    expect(sum(after)! - (sum(before) ?? 0)).toBeGreaterThanOrEqual(200);
    expect(after.value('quota_decision_queue_depth', { store: 'limits' })).toBe(0);
    expect(after.value('quota_decision_queue_depth', { store: 'command_quotas' })).toBe(0);
    expect(after.value('quota_decision_queue_depth', { store: 'executions' })).toBe(0);
    expect(after.value('quota_grpc_calls_total', { method: 'CheckLimit', code: '0' })).toBe(
      (before.value('quota_grpc_calls_total', { method: 'CheckLimit', code: '0' }) ?? 0) + 200,
    );
  });

  it('does not count a retried request_id again', async () => {
    const ask = () => checkLimit({ userId: 'replayer', requestId: 'metrics-retry-1' });
    const before = await scrape();
    const first = await ask();
    const again = await ask();
    expect(again.allowed).toBe(first.allowed);
    const after = await scrape();
    const moved = (rule: string) =>
      decisions(after, 'check_limit', rule, 'allowed') -
      decisions(before, 'check_limit', rule, 'allowed');
    expect(moved('*')).toBe(1);
    expect(moved('m-user')).toBe(1);
  });

  it('counts command quota decisions under the rule of their command type', async () => {
    await server.client.admin.upsertCommandQuotaRule({
      rule: typesV1.CommandQuotaRule.fromPartial({ userId: '*', commandType: 'mshell', daily: 2 }),
    });
    const before = await scrape();
    const answers = [];
    for (let i = 0; i < 3; i++) {
      answers.push(
        await server.client.quota.checkCommandQuota(
          CheckCommandQuotaRequest.fromPartial({ userId: 'cq', commandType: 'mshell' }),
        ),
      );
    }
    expect(answers.map((a) => a.allowed)).toEqual([true, true, false]);
    const after = await scrape();
    const moved = (rule: string, result: Result) =>
      decisions(after, 'command_quota', rule, result) -
      decisions(before, 'command_quota', rule, result);
    expect(moved('command:mshell', 'allowed')).toBe(2);
    expect(moved('command:mshell', 'denied')).toBe(1);
    expect(moved('*', 'allowed')).toBe(2);
    expect(moved('*', 'denied')).toBe(1);
    const count = (s: Scrape) =>
      s.value('quota_decision_batch_size_count', { store: 'command_quotas' }) ?? 0;
    expect(count(after) - count(before)).toBeGreaterThanOrEqual(3);
  });

  it('shows the database, per-host load and tasks', async () => {
    await server.client.quota.reportLoad(
      report({ host: 'exec-metrics', cpuPercent: 85, memoryPercent: 40, loadAvg1m: 3 }),
    );
    await waitFor(async () => {
      const s = await scrape();
      return (s.value('quota_task_runs_total', { task: 'database-probe' }) ?? 0) >= 1;
    });
    const s = await scrape();
    expect(s.value('quota_database_available')).toBe(1);
    expect(s.value('quota_database_pool_connections')).toBeGreaterThan(0);
    expect(s.value('quota_database_pool_idle_connections')).toBeGreaterThanOrEqual(0);
    expect(s.value('quota_database_pool_waiting')).toBe(0);
    expect(s.value('quota_database_pool_max_connections')).toBeGreaterThan(0);
    const host = { host: 'exec-metrics' };
    expect(s.value('quota_host_cpu_percent', host)).toBe(85);
    expect(s.value('quota_host_memory_percent', host)).toBe(40);
    expect(s.value('quota_host_load_average_1m', host)).toBe(3);
    expect(s.value('quota_host_throttle_factor', host)).toBe(0.6);
    expect(s.value('quota_host_data_age_seconds', host)).toBeGreaterThanOrEqual(0);
    const task = { task: 'database-probe' };
    expect(s.value('quota_task_failures_total', task)).toBe(0);
    expect(s.value('quota_task_running', task)).toBeDefined();
    expect(s.value('quota_task_last_duration_seconds', task)).toBeGreaterThanOrEqual(0);
    expect(s.value('quota_task_last_run_timestamp_seconds', task)).toBeGreaterThan(0);
    // The process figures prom-client collects by default, under the same prefix.
    expect(s.value('quota_process_cpu_user_seconds_total')).toBeGreaterThan(0);
  });

  it('still answers while the database is away, with the breaker open and answers degraded', async () => {
    const before = await scrape();
    await relay.cut();
    // The first call finds the database gone and opens the breaker; later ones are degraded.
    await waitFor(async () => (await checkLimit({ userId: 'away' })).degraded, 10_000);
    const during = await scrape();
    expect(during.value('quota_database_available')).toBe(0);
    expect(decisions(during, 'check_limit', '*', 'degraded')).toBeGreaterThan(
      decisions(before, 'check_limit', '*', 'degraded'),
    );
    expect(decisions(during, 'check_limit', 'm-user', 'degraded')).toBeGreaterThan(
      decisions(before, 'check_limit', 'm-user', 'degraded'),
    );
    await relay.open();
    await waitFor(async () => (await scrape()).value('quota_database_available') === 1, 10_000);
  });

  it('answers 404 off /metrics', async () => {
    const res = await fetch(`http://127.0.0.1:${metricsPort}/other`);
    expect(res.status).toBe(404);
  });
});
