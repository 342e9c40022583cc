/**
 * The benchmark. Starts a server (embedded PostgreSQL in a temporary folder, or DATABASE_URL
 * when set) as a child process, or targets QUOTA_BENCH_TARGET=host:port, then prints
 * decisions/s, p50 and p99 for CheckLimit: 10,000 keys at 64 in flight, one hot key at 64 in
 * flight, and an open-loop offered rate of 2,000 calls/s (latency from the intended send time,
 * so a stall counts against every call it delays); then for the command quotas
 * (commandQuota.ts): CheckCommandQuota and RecordExecution (durable) at 64 in flight over 10,000
 * users and over one user. Then the same open loop against the floor server (floorServer.ts:
 * grpc-js answering from memory), for what the machine allowed then.
 *
 * Env: QUOTA_BENCH_TARGET, QUOTA_BENCH_SECONDS (per scenario, default 10),
 * QUOTA_BENCH_WARMUP_SECONDS (closed-loop warm-up before the CheckLimit scenarios, and split
 * between the two command-quota methods before theirs, default SECONDS), QUOTA_BENCH_RATE
 * (open-loop calls/s, default 2000), QUOTA_BENCH_CONCURRENCY (default 64), QUOTA_BENCH_SCENARIOS
 * or `--only` (a comma-separated list of keys, hot, open, floor, quota-users, quota-one,
 * record-users, record-one, record-users-unreserved, record-one-unreserved, audit (audit.ts:
 * CheckLimit denials at the offered rate with QUOTA_AUDIT off and on), or the groups all,
 * limit, command and record; default all), QUOTA_BENCH_SETTLE_MS (pause before each scenario,
 * default 10000), QUOTA_BENCH_CLIENT (http2, a minimal gRPC client on a TCP socket that leaves
 * the CPU to the server, the default; or grpc-js), QUOTA_BENCH_TOKEN (an admin token of the
 * QUOTA_BENCH_TARGET server; a server the bench starts gets one of its own). Every call carries
 * `authorization: Bearer <token>`: the figures are with authentication on.
 */
import { connect, RateLimitRule, Scope, type QuotaConnection } from '@quota-authority/client';
import {
  CheckLimitRequest,
  type CheckLimitResponse,
} from '../clients/typescript/src/gen/quota/v1/quota_service.js';
import { auditBench } from './audit.js';
import { commandQuotaBench } from './commandQuota.js';
import { CHECK_LIMIT } from './LightClient.js';
import { caller, closedLoop, measured, Tally, type Caller } from './measure.js';
import { openLoop } from './openLoop.js';
import {
  CLIENT,
  COMMAND_SCENARIOS,
  CONCURRENCY,
  RATE,
  SCENARIOS,
  SECONDS,
  settle,
  WARMUP_SECONDS,
} from './settings.js';
import { startFloorServer, startServer, waitServing } from './startServer.js';

const request = (userId: string): CheckLimitRequest => CheckLimitRequest.fromPartial({ userId });

type Check = Caller<CheckLimitRequest, CheckLimitResponse>;

/** The bench's CheckLimit client for `address` (CLIENT), opened once the server answers. */
function checkLimitCaller(address: string, client: QuotaConnection, token: string | undefined) {
  const { call, close } = caller(
    address,
    CHECK_LIMIT,
    (req, metadata, callback) => client.raw.quota.checkLimit(req, metadata, callback),
    token,
  );
  return { check: call, close };
}

/** The generated client's options, for the service and the floor alike. */
const CONNECT_OPTIONS = {
  timeoutMs: 10_000,
  channelOptions: { 'grpc.enable_channelz': 0, 'grpc.enable_retries': 0 },
};

/** CheckLimit at CONCURRENCY in flight for `seconds`, the user of call i being `key(i)`. */
function checkLoop(
  check: Check,
  name: string,
  key: (i: number) => string,
  seconds = SECONDS,
): Promise<Tally> {
  return closedLoop(new Tally(name), (i) => check(request(key(i))), seconds);
}

async function main(): Promise<void> {
  const target = process.env['QUOTA_BENCH_TARGET'];
  const serving = ['keys', 'hot', 'open', ...COMMAND_SCENARIOS] as const;
  if (serving.some((s) => SCENARIOS.has(s))) {
    const server = target ? undefined : await startServer();
    const address = target ?? server!.address;
    const token = target ? process.env['QUOTA_BENCH_TOKEN'] : server!.token;
    const client = connect({ address: address, ...CONNECT_OPTIONS, token });
    try {
      await waitServing(client);
      const pid = server?.child.pid;
      await checkLimitBench(address, client, token, pid);
      await commandQuotaBench({ address, client, token, pid });
    } finally {
      client.close();
      await server?.stop();
    }
  }
  if (SCENARIOS.has('audit')) {
    if (target) console.log('audit: skipped, QUOTA_BENCH_TARGET is set');
    else await auditBench();
  }
  if (!SCENARIOS.has('floor')) return;
  // The floor is this machine's: against a server elsewhere it would say nothing about it.
  if (target) console.log('floor: skipped, QUOTA_BENCH_TARGET is set');
  // The service and its database are stopped by now, so the floor has the machine to itself.
  else await floor();
}

/** The CheckLimit scenarios that are selected (keys, hot, open), after their own warm-up. */
async function checkLimitBench(
  address: string,
  client: QuotaConnection,
  token: string | undefined,
  pid: number | undefined,
): Promise<void> {
  if (!['keys', 'hot', 'open'].some((s) => SCENARIOS.has(s as 'keys'))) return;
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
  const { check, close } = checkLimitCaller(address, client, token);
  console.log(
    `quota-authority CheckLimit bench against ${address}: ${SECONDS} s per scenario, ${CONCURRENCY} in flight, ${CLIENT} client`,
  );
  // Warm-up: connections, prepared statements, JIT.
  await checkLoop(check, 'warm-up', (i) => `warm-${i % 10_000}`, WARMUP_SECONDS);
  if (SCENARIOS.has('keys')) {
    await settle();
    await measured(pid, () =>
      checkLoop(check, `10,000 keys, ${CONCURRENCY} in flight`, (i) => `key-${i % 10_000}`),
    );
  }
  if (SCENARIOS.has('hot')) {
    await settle();
    await measured(pid, () => checkLoop(check, `1 hot key, ${CONCURRENCY} in flight`, () => 'hot'));
  }
  if (SCENARIOS.has('open')) {
    await settle();
    await measured(pid, () =>
      openLoop(check, `open loop, ${RATE}/s offered`, (n) => request(`open-${n % 10_000}`)),
    );
  }
  close();
  await client.admin.deleteRateLimitRule({ name: 'bench-user' });
}

/** The open loop against the floor server, warmed up and settled the same way. */
async function floor(): Promise<void> {
  const server = await startFloorServer();
  const client = connect({ address: server.address, ...CONNECT_OPTIONS, token: server.token });
  try {
    await waitServing(client);
    const { check, close } = checkLimitCaller(server.address, client, server.token);
    try {
      await checkLoop(check, 'warm-up', (i) => `warm-${i % 10_000}`, WARMUP_SECONDS);
      await settle();
      await measured(server.child.pid, () =>
        openLoop(check, `floor: grpc-js from memory, ${RATE}/s`, (n) =>
          request(`open-${n % 10_000}`),
        ),
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
