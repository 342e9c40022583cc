import { connect, RateLimitRule, Scope, type QuotaConnection } from '@quota-authority/client';
import { CheckLimitRequest } from '../clients/typescript/src/gen/quota/v1/quota_service.js';
import { checkCommand, recordCommand, userOf } from './commandCalls.js';
import { CHECK_COMMAND_QUOTA, CHECK_LIMIT, RECORD_EXECUTION } from './LightClient.js';
import { caller, closedLoop, measured, Tally, type Measurement, type Outcome } from './measure.js';
import { openLoop } from './openLoop.js';
import { openWatchers } from './openWatchers.js';
import {
  CLIENT,
  CONCURRENCY,
  pause,
  RATE,
  SECONDS,
  settle,
  WARMUP_SECONDS,
  type SuiteScenario,
} from './settings.js';
import { startServer, waitServing } from './startServer.js';
import type { BenchDatabase } from './startBenchDatabase.js';
import type { Callers, Method, Scenario } from './suite.js';

/** A scenario's two loops: at CONCURRENCY in flight, and at RATE offered. */
export interface ScenarioResult {
  readonly closed: Measurement;
  readonly open: Measurement;
}

/** The generated client's options, for the service and the no-op baseline alike. */
export const CONNECT_OPTIONS = {
  deadlineMs: 10_000,
  channelOptions: { 'grpc.enable_channelz': 0, 'grpc.enable_retries': 0 },
};

/** The rule of the CheckLimit scenarios: one user rule that never denies. */
const RULE = 'bench-user';

/**
 * Runs `scenarios` against a server: the service (`node dist/src/main.js serve`, or
 * QUOTA_BENCH_TARGET when set) or the no-op baseline (noopServer.ts), started on `db`. First a
 * closed-loop warm-up of every method the scenarios call, then per scenario (with its watchers
 * open throughout) a closed loop at CONCURRENCY in flight and, after a settling pause, an open
 * loop at RATE.
 */
export async function runServerSuite(
  kind: 'service' | 'no-op',
  scenarios: readonly Scenario[],
  db: BenchDatabase | undefined,
): Promise<Map<SuiteScenario, ScenarioResult>> {
  const results = new Map<SuiteScenario, ScenarioResult>();
  if (scenarios.length === 0) return results;
  const target = kind === 'service' ? process.env['QUOTA_BENCH_TARGET'] : undefined;
  const server = target ? undefined : await startServer(db ? { DATABASE_URL: db.url } : {}, kind);
  const address = target ?? server!.address;
  const token = target ? process.env['QUOTA_BENCH_TOKEN'] : server!.token;
  const client = connect({ address, token, ...CONNECT_OPTIONS });
  const closers: (() => void)[] = [() => client.close()];
  try {
    if (kind === 'service') {
      await waitServing(client);
      await useBenchRule(client);
    } else {
      await waitServing(client, () => client.quota.checkLimit({ userId: 'ready' }));
    }
    const callers = openCallers(address, client, token, closers);
    const pid = server?.child.pid;
    const name = kind === 'service' ? 'quota-authority' : 'no-op baseline';
    console.log(
      `\n${name} at ${address}: ${SECONDS} s per loop, ${CONCURRENCY} in flight, then ${RATE}/s offered; ${CLIENT} client (batched: the client package's connect())`,
    );
    await warmUp(callers, scenarios);
    const prefix = kind === 'service' ? '' : 'no-op: ';
    for (const s of scenarios) {
      const watchers = s.watchers > 0 ? await openWatchers(address, token, s.watchers) : undefined;
      try {
        const call = s.call(callers);
        await pause();
        const closed = await measured(
          pid,
          () => closedLoop(new Tally(`${prefix}${s.label}, ${CONCURRENCY} in flight`), call),
          db?.root,
        );
        await settle();
        const open = await measured(
          pid,
          () => openLoop(call, `${prefix}${s.label}, ${RATE}/s offered`, (n) => n),
          db?.root,
        );
        results.set(s.name, { closed, open });
      } finally {
        watchers?.close();
      }
    }
    if (kind === 'service') await client.admin.deleteRateLimitRule({ name: RULE });
    return results;
  } finally {
    for (const close of closers) close();
    await server?.stop();
  }
}

/**
 * One user rule of 10^9 a minute, so that every CheckLimit is a full decision that counts and
 * none is denied; the database's other user rules are disabled, so that it is the only one.
 */
export async function useBenchRule(client: QuotaConnection): Promise<void> {
  const { rules } = await client.admin.listRateLimitRules({ scope: Scope.SCOPE_UNSPECIFIED });
  for (const r of rules) {
    if (r.scope === Scope.SCOPE_USER && r.name !== RULE)
      await client.admin.setRateLimitRuleEnabled({ name: r.name, enabled: false });
  }
  await client.admin.upsertRateLimitRule({
    rule: RateLimitRule.fromPartial({
      name: RULE,
      scope: Scope.SCOPE_USER,
      match: '*',
      limit: 1_000_000_000,
      window: { seconds: 60, nanos: 0 },
    }),
  });
}

/** The bench client's callers on connections of their own, and the batching client's checkLimit. */
export function openCallers(
  address: string,
  client: QuotaConnection,
  token: string | undefined,
  closers: (() => void)[],
): Callers {
  const raw = client.raw.quota;
  const limit = caller(address, CHECK_LIMIT, (q, m, cb) => raw.checkLimit(q, m, cb), token);
  const check = caller(
    address,
    CHECK_COMMAND_QUOTA,
    (q, m, cb) => raw.checkCommandQuota(q, m, cb),
    token,
  );
  const record = caller(
    address,
    RECORD_EXECUTION,
    (q, m, cb) => raw.recordExecution(q, m, cb),
    token,
  );
  closers.push(limit.close, check.close, record.close);
  return {
    checkLimit: limit.call,
    batched: (request) => client.quota.checkLimit(request),
    checkCommandQuota: check.call,
    recordExecution: record.call,
  };
}

/**
 * A closed loop on each method the scenarios call (connections, prepared statements, JIT),
 * sharing WARMUP_SECONDS, on keys and users of their own.
 */
async function warmUp(callers: Callers, scenarios: readonly Scenario[]): Promise<void> {
  const methods = [...new Set(scenarios.flatMap((s) => s.methods))];
  const calls: Record<Method, (n: number) => Promise<Outcome>> = {
    checkLimit: (n) =>
      callers.checkLimit(CheckLimitRequest.fromPartial({ userId: `warm-${n % 10_000}` })),
    batched: (n) =>
      callers.batched(CheckLimitRequest.fromPartial({ userId: `warm-${n % 10_000}` })),
    checkCommandQuota: (n) => checkCommand(callers.checkCommandQuota, userOf(n)),
    recordExecution: (n) => recordCommand(callers.recordExecution, n, userOf(n)),
  };
  for (const m of methods) {
    await closedLoop(new Tally('warm-up'), calls[m], WARMUP_SECONDS / methods.length);
  }
}
