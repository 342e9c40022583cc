/**
 * CheckLimit benchmark. Starts a server (embedded PostgreSQL in a temporary folder, or
 * DATABASE_URL when set) as a child process, or targets QUOTA_BENCH_TARGET=host:port, then
 * prints decisions/s, p50 and p99 for: 10,000 keys at 64 in flight, one hot key at 64 in
 * flight, and an open-loop offered rate of 2,000 calls/s (latency from the intended send time,
 * so a stall counts against every call it delays).
 *
 * Env: QUOTA_BENCH_TARGET, QUOTA_BENCH_SECONDS (per scenario, default 10),
 * QUOTA_BENCH_RATE (open-loop calls/s, default 2000), QUOTA_BENCH_CONCURRENCY (default 64),
 * QUOTA_BENCH_SCENARIOS (any of keys,hot,open; default all three), QUOTA_BENCH_CLIENT (http2, a
 * minimal gRPC client on node:http2 that leaves the CPU to the server, the default; or grpc-js).
 */
import {
  connect,
  RateLimitRule,
  Scope,
  type QuotaConnection,
} from '../clients/typescript/src/index.js';
import {
  CheckLimitRequest,
  type CheckLimitResponse,
} from '../clients/typescript/src/gen/quota/v1/quota_service.js';
import { LightClient } from './LightClient.js';
import { startServer, waitServing } from './startServer.js';

const SECONDS = Number(process.env['QUOTA_BENCH_SECONDS'] ?? 10);
const RATE = Number(process.env['QUOTA_BENCH_RATE'] ?? 2000);
const CONCURRENCY = Number(process.env['QUOTA_BENCH_CONCURRENCY'] ?? 64);
const SCENARIOS = (process.env['QUOTA_BENCH_SCENARIOS'] ?? 'keys,hot,open').split(',');
const CLIENT = process.env['QUOTA_BENCH_CLIENT'] === 'grpc-js' ? 'grpc-js' : 'http2';

const request = (userId: string): CheckLimitRequest => CheckLimitRequest.fromPartial({ userId });

/** One CheckLimit call, by whichever client the bench uses. */
type Caller = (request: CheckLimitRequest) => Promise<CheckLimitResponse>;

/** grpc-js through the generated client, without per-call metadata or deadline. */
function grpcJsCaller(client: QuotaConnection): Caller {
  return (req) =>
    new Promise((resolve, reject) =>
      client.raw.quota.checkLimit(req, (err, res) => (err ? reject(err) : resolve(res))),
    );
}

interface Result {
  name: string;
  calls: number;
  errors: number;
  denied: number;
  degraded: number;
  seconds: number;
  latencies: Float64Array;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function report(r: Result): void {
  const sorted = r.latencies.slice().sort();
  const line = [
    r.name.padEnd(36),
    `${Math.round(r.calls / r.seconds)
      .toString()
      .padStart(7)} decisions/s`,
    `p50 ${percentile(sorted, 50).toFixed(2)} ms`,
    `p99 ${percentile(sorted, 99).toFixed(2)} ms`,
    `max ${percentile(sorted, 100).toFixed(2)} ms`,
    `(${r.calls} calls, ${r.errors} errors, ${r.denied} denied, ${r.degraded} degraded)`,
  ];
  console.log(line.join('  '));
}

async function closedLoop(
  check: Caller,
  name: string,
  key: (i: number) => string,
): Promise<Result> {
  const latencies: number[] = [];
  let calls = 0,
    errors = 0,
    denied = 0,
    degraded = 0,
    i = 0;
  const until = performance.now() + SECONDS * 1000;
  const started = performance.now();
  const worker = async () => {
    while (performance.now() < until) {
      const t0 = performance.now();
      try {
        const res = await check(request(key(i++)));
        if (!res.allowed) denied++;
        if (res.degraded) degraded++;
      } catch {
        errors++;
      }
      latencies.push(performance.now() - t0);
      calls++;
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return {
    name,
    calls,
    errors,
    denied,
    degraded,
    seconds: (performance.now() - started) / 1000,
    latencies: Float64Array.from(latencies),
  };
}

async function openLoop(check: Caller, name: string): Promise<Result> {
  const latencies = new Float64Array(RATE * SECONDS);
  let calls = 0,
    errors = 0,
    denied = 0,
    degraded = 0,
    sent = 0,
    outstanding = 0;
  const started = performance.now();
  const total = RATE * SECONDS;
  let drained: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (drained = resolve));
  // Nothing per call is kept beyond its latency, so the client's own GC stays small.
  const finish = (intended: number, ok: boolean) => {
    if (ok) latencies[calls] = performance.now() - intended;
    else errors++;
    calls++;
    outstanding--;
    if (sent === total && outstanding === 0) drained();
  };
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * RATE));
    while (sent < due) {
      // Latency counts from when the call was due, not when the loop got round to it.
      const intended = started + (sent / RATE) * 1000;
      const n = sent++;
      outstanding++;
      check(request(`open-${n % 10_000}`)).then(
        (res) => {
          if (!res.allowed) denied++;
          if (res.degraded) degraded++;
          finish(intended, true);
        },
        () => finish(intended, false),
      );
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  if (outstanding > 0) await done;
  return {
    name,
    calls,
    errors,
    denied,
    degraded,
    seconds: (performance.now() - started) / 1000,
    latencies: latencies.subarray(0, calls - errors),
  };
}

async function main(): Promise<void> {
  const target = process.env['QUOTA_BENCH_TARGET'];
  const server = target ? undefined : await startServer();
  const address = target ?? server!.address;
  const client = connect(address, {
    timeoutMs: 10_000,
    channelOptions: { 'grpc.enable_channelz': 0, 'grpc.enable_retries': 0 },
  });
  try {
    await waitServing(client);
    // One user rule that never denies, so every call is a full decision that counts.
    for (const r of (await client.admin.listRateLimitRules({ scope: Scope.SCOPE_UNSPECIFIED }))
      .rules) {
      if (r.scope === Scope.SCOPE_USER)
        await client.admin.setRateLimitRuleEnabled({ name: r.name, enabled: false });
    }
    await client.admin.upsertRateLimitRule({
      rule: RateLimitRule.fromPartial({
        name: 'bench-user',
        scope: Scope.SCOPE_USER,
        match: '*',
        limit: 1_000_000_000,
        window: { seconds: 60, nanos: 0 },
      }),
    });
    const light = CLIENT === 'http2' ? new LightClient(address) : undefined;
    const check: Caller = light ? (req) => light.checkLimit(req) : grpcJsCaller(client);
    console.log(
      `quota-authority CheckLimit bench against ${address}: ${SECONDS} s per scenario, ${CONCURRENCY} in flight, ${CLIENT} client`,
    );
    // Warm-up: connections, prepared statements, JIT.
    await closedLoop(check, 'warm-up', (i) => `warm-${i % 10_000}`).then(() => undefined);
    if (SCENARIOS.includes('keys')) {
      report(
        await closedLoop(
          check,
          `10,000 keys, ${CONCURRENCY} in flight`,
          (i) => `key-${i % 10_000}`,
        ),
      );
    }
    if (SCENARIOS.includes('hot')) {
      report(await closedLoop(check, `1 hot key, ${CONCURRENCY} in flight`, () => 'hot'));
    }
    if (SCENARIOS.includes('open')) report(await openLoop(check, `open loop, ${RATE}/s offered`));
    light?.close();
    await client.admin.deleteRateLimitRule({ name: 'bench-user' });
  } finally {
    client.close();
    await server?.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
