/**
 * CheckLimit benchmark. Starts a server (embedded PostgreSQL in a temporary folder, or
 * DATABASE_URL when set) as a child process, or targets QUOTA_BENCH_TARGET=host:port, then
 * prints decisions/s, p50 and p99 for: 10,000 keys at 64 in flight, one hot key at 64 in
 * flight, and an open-loop offered rate of 2,000 calls/s (latency from the intended send time,
 * so a stall counts against every call it delays). Then the same open loop against the floor
 * server (floorServer.ts: grpc-js answering from memory), for what the machine allowed then.
 *
 * Env: QUOTA_BENCH_TARGET, QUOTA_BENCH_SECONDS (per scenario, default 10),
 * QUOTA_BENCH_WARMUP_SECONDS (closed-loop warm-up before the scenarios, default SECONDS),
 * QUOTA_BENCH_RATE (open-loop calls/s, default 2000), QUOTA_BENCH_CONCURRENCY (default 64),
 * QUOTA_BENCH_SCENARIOS (any of keys,hot,open,floor; default all four), QUOTA_BENCH_SETTLE_MS (pause
 * before each scenario, default 10000), QUOTA_BENCH_CLIENT (http2, a minimal gRPC client on a
 * TCP socket that leaves the CPU to the server, the default; or grpc-js), QUOTA_BENCH_TOKEN (an
 * admin token of the QUOTA_BENCH_TARGET server; a server the bench starts gets one of its own).
 * Every call carries `authorization: Bearer <token>`: the figures are with authentication on.
 */
import { Metadata } from '@grpc/grpc-js';
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
import { clock, pace } from './Pacer.js';
import { treeCpu } from './processCpu.js';
import { startFloorServer, startServer, waitServing } from './startServer.js';

const SECONDS = Number(process.env['QUOTA_BENCH_SECONDS'] ?? 10);
const WARMUP_SECONDS = Number(process.env['QUOTA_BENCH_WARMUP_SECONDS'] ?? SECONDS);
const RATE = Number(process.env['QUOTA_BENCH_RATE'] ?? 2000);
const CONCURRENCY = Number(process.env['QUOTA_BENCH_CONCURRENCY'] ?? 64);
const SCENARIOS = (process.env['QUOTA_BENCH_SCENARIOS'] ?? 'keys,hot,open,floor').split(',');
const SETTLE_MS = Number(process.env['QUOTA_BENCH_SETTLE_MS'] ?? 10_000);
const CLIENT = process.env['QUOTA_BENCH_CLIENT'] === 'grpc-js' ? 'grpc-js' : 'http2';

/**
 * A pause before each scenario, so that what the one before left behind (autovacuum of the rows
 * it updated, the garbage of its calls) is not measured as this one. 10 s, because V8's memory
 * reducer collects the old generation of an idle process only 8 s after its allocation drops;
 * after 3 s the collection of a closed-loop scenario's garbage fell inside the open loop.
 */
const settle = () => new Promise((resolve) => setTimeout(resolve, SETTLE_MS));

const request = (userId: string): CheckLimitRequest => CheckLimitRequest.fromPartial({ userId });

/** One CheckLimit call, by whichever client the bench uses. */
type Caller = (request: CheckLimitRequest) => Promise<CheckLimitResponse>;

/** grpc-js through the generated client, with the token and no deadline. */
function grpcJsCaller(client: QuotaConnection, token: string | undefined): Caller {
  const metadata = new Metadata();
  if (token) metadata.set('authorization', `Bearer ${token}`);
  return (req) =>
    new Promise((resolve, reject) =>
      client.raw.quota.checkLimit(req, metadata, (err, res) => (err ? reject(err) : resolve(res))),
    );
}

/** The bench's client for `address` (CLIENT), opened once the server answers. */
function caller(
  address: string,
  client: QuotaConnection,
  token: string | undefined,
): { check: Caller; close: () => void } {
  if (CLIENT !== 'http2') return { check: grpcJsCaller(client, token), close: () => undefined };
  const light = new LightClient(address, token);
  return { check: (req) => light.checkLimit(req), close: () => light.close() };
}

/** The generated client's options, for the service and the floor alike. */
const CONNECT_OPTIONS = {
  timeoutMs: 10_000,
  channelOptions: { 'grpc.enable_channelz': 0, 'grpc.enable_retries': 0 },
};

/** What one scenario measured: outcomes and the latency of every answered call. */
class Tally {
  calls = 0;
  errors = 0;
  denied = 0;
  degraded = 0;
  private readonly latencies: number[] = [];
  private readonly started = performance.now();

  constructor(readonly name: string) {}

  answered(res: CheckLimitResponse, latencyMs: number): void {
    this.calls++;
    if (!res.allowed) this.denied++;
    if (res.degraded) this.degraded++;
    this.latencies.push(latencyMs);
  }

  failed(): void {
    this.calls++;
    this.errors++;
  }

  report(): void {
    const seconds = (performance.now() - this.started) / 1000;
    const sorted = Float64Array.from(this.latencies).sort();
    const at = (p: number) =>
      sorted.length === 0
        ? 'n/a'
        : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!.toFixed(2);
    const line = [
      this.name.padEnd(36),
      `${Math.round(this.calls / seconds)
        .toString()
        .padStart(7)} decisions/s`,
      `p50 ${at(50)} ms`,
      `p99 ${at(99)} ms`,
      `max ${at(100)} ms`,
      `(${this.calls} calls, ${this.errors} errors, ${this.denied} denied, ${this.degraded} degraded)`,
    ];
    console.log(line.join('  '));
  }
}

/**
 * Runs a scenario and prints its figures, with the CPU time per call of the server, of the
 * PostgreSQL processes it started, and of this client, where the server is a local child.
 */
async function measured(serverPid: number | undefined, run: () => Promise<Tally>): Promise<void> {
  const before = serverPid === undefined ? undefined : await treeCpu(serverPid);
  const client = process.cpuUsage();
  const tally = await run();
  const clientMs = (({ user, system }) => (user + system) / 1000)(process.cpuUsage(client));
  const after = serverPid === undefined ? undefined : await treeCpu(serverPid);
  tally.report();
  const perCall = (ms: number) => `${Math.round((ms * 1000) / Math.max(1, tally.calls))} µs`;
  const parts: string[] = [];
  if (before && after) {
    parts.push(`server ${perCall(after.server - before.server)}`);
    // Nothing below the server for the floor or an external database: no figure, not 0 µs.
    const database = after.database - before.database;
    if (database > 0) parts.push(`database ${perCall(database)}`);
  }
  parts.push(`client ${perCall(clientMs)}`);
  console.log(`${''.padEnd(36)}  CPU per call: ${parts.join(', ')}`);
}

async function closedLoop(
  check: Caller,
  name: string,
  key: (i: number) => string,
  seconds = SECONDS,
): Promise<Tally> {
  const tally = new Tally(name);
  let i = 0;
  const until = performance.now() + seconds * 1000;
  const worker = async () => {
    while (performance.now() < until) {
      const t0 = performance.now();
      try {
        const res = await check(request(key(i++)));
        tally.answered(res, performance.now() - t0);
      } catch {
        tally.failed();
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return tally;
}

/**
 * Calls at RATE per second whatever the answers do, latency counted from when each call was
 * due, so a stall counts against every call it delays.
 */
async function openLoop(check: Caller, name: string): Promise<Tally> {
  const tally = new Tally(name);
  const total = RATE * SECONDS;
  let outstanding = 0;
  let drained: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (drained = resolve));
  let paced = false;
  const settle = () => {
    if (--outstanding === 0 && paced) drained();
  };
  await pace(RATE, total, (n, dueAt) => {
    outstanding++;
    check(request(`open-${n % 10_000}`)).then(
      (res) => {
        tally.answered(res, clock() - dueAt);
        settle();
      },
      () => {
        tally.failed();
        settle();
      },
    );
  });
  paced = true;
  if (outstanding > 0) await done;
  return tally;
}

async function main(): Promise<void> {
  const target = process.env['QUOTA_BENCH_TARGET'];
  const server = target ? undefined : await startServer();
  const address = target ?? server!.address;
  const pid = server?.child.pid;
  const token = target ? process.env['QUOTA_BENCH_TOKEN'] : server!.token;
  const client = connect(address, { ...CONNECT_OPTIONS, token });
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
    const { check, close } = caller(address, client, token);
    console.log(
      `quota-authority CheckLimit bench against ${address}: ${SECONDS} s per scenario, ${CONCURRENCY} in flight, ${CLIENT} client`,
    );
    // Warm-up: connections, prepared statements, JIT.
    await closedLoop(check, 'warm-up', (i) => `warm-${i % 10_000}`, WARMUP_SECONDS);
    if (SCENARIOS.includes('keys')) {
      await settle();
      await measured(pid, () =>
        closedLoop(check, `10,000 keys, ${CONCURRENCY} in flight`, (i) => `key-${i % 10_000}`),
      );
    }
    if (SCENARIOS.includes('hot')) {
      await settle();
      await measured(pid, () =>
        closedLoop(check, `1 hot key, ${CONCURRENCY} in flight`, () => 'hot'),
      );
    }
    if (SCENARIOS.includes('open')) {
      await settle();
      await measured(pid, () => openLoop(check, `open loop, ${RATE}/s offered`));
    }
    close();
    await client.admin.deleteRateLimitRule({ name: 'bench-user' });
  } finally {
    client.close();
    await server?.stop();
  }
  if (!SCENARIOS.includes('floor')) return;
  // The floor is this machine's: against a server elsewhere it would say nothing about it.
  if (target) console.log('floor: skipped, QUOTA_BENCH_TARGET is set');
  // The service and its database are stopped by now, so the floor has the machine to itself.
  else await floor();
}

/** The open loop against the floor server, warmed up and settled the same way. */
async function floor(): Promise<void> {
  const server = await startFloorServer();
  const client = connect(server.address, { ...CONNECT_OPTIONS, token: server.token });
  try {
    await waitServing(client);
    const { check, close } = caller(server.address, client, server.token);
    try {
      await closedLoop(check, 'warm-up', (i) => `warm-${i % 10_000}`, WARMUP_SECONDS);
      await settle();
      await measured(server.child.pid, () =>
        openLoop(check, `floor: grpc-js from memory, ${RATE}/s`),
      );
    } finally {
      close();
    }
  } finally {
    client.close();
    await server.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
