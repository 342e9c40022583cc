/**
 * The benchmark, `npm run bench` (after `npm run build`). It starts a PostgreSQL (embedded, in a
 * temporary folder; or DATABASE_URL, migrated beforehand), then in turn on that one database:
 * the service (`node dist/src/main.js serve` as a child process, with a new admin token: every
 * call is authenticated), the no-op baseline (noopServer.ts: the service's own server stack and
 * middleware with decision handlers that answer a fixed answer) and the peer (rate-limiter-
 * flexible's RateLimiterPostgres.consume() in this process, PeerLimiter.ts). Each scenario runs
 * a closed loop at QUOTA_BENCH_CONCURRENCY in flight (decisions/s, CPU per decision of the server,
 * the database and this client, from /proc) and then an open loop at QUOTA_BENCH_RATE offered
 * (p50, p99, counted from when each call was due), with the server's peak RSS over both. At the
 * end: a table of every scenario with its ratios to the no-op and to the peer, one
 * `BENCH {json}` line per scenario, and issue 16's targets, each with its figure and met / not
 * met (`BENCH-TARGET {json}`). With the defaults the whole run takes 6 to 7 minutes.
 *
 * Scenarios (suite.ts; `--only a,b` or QUOTA_BENCH_SCENARIOS, default `all`):
 * - keys: CheckLimit over 10,000 keys; hot: CheckLimit on one key (the bench's user rule of 10^9
 *   a minute, so that every call is a decision that counts and none is denied);
 * - batch-keys, batch-hot: the same through the client package's connect(), whose default
 *   batching sends concurrent checkLimit calls as CheckLimits calls (decisions counted);
 * - quota: CheckCommandQuota over 10,000 users (default shell rule); record: durable
 *   RecordExecution over 10,000 users, counted when recorded;
 * - mix: 80 % CheckLimit, 10 % CheckCommandQuota, 10 % RecordExecution settling the mix's own
 *   reservations, with QUOTA_BENCH_WATCHERS WatchLoad streams open;
 * - watch: CheckLimit over 10,000 keys with QUOTA_BENCH_WATCHERS WatchLoad streams open;
 * - noop: the no-op baseline of each selected scenario (CheckLimit's serves keys and hot; the
 *   batched one serves both batch scenarios); peer: the peer over 10,000 keys and on one hot key.
 * Groups: all (every scenario above), limit (keys, hot, batch-keys, batch-hot, noop, peer),
 * baselines (noop, peer). Outside `all`, each on a server of its own: the command-quota detail
 * (commandQuota.ts: quota-users, quota-one, record-users, record-one, record-users-unreserved,
 * record-one-unreserved; groups command and record), audit (audit.ts: the violation audit's cost),
 * floor (floorBench.ts: bare grpc-js from memory) and soak (soak.ts: the mix with its watchers at
 * QUOTA_BENCH_SOAK_RATE, default 500/s, for QUOTA_BENCH_SOAK_SECONDS, default 600; the server's
 * RSS every 10 s and the calls per minute; met / not met for memory flat within 10 % and no
 * errors, and a `BENCH-SOAK {json}` line).
 *
 * Env: QUOTA_BENCH_SECONDS (per loop, default 5), QUOTA_BENCH_WARMUP_SECONDS (closed-loop warm-up
 * of each server, shared by the methods its scenarios call, default SECONDS),
 * QUOTA_BENCH_SETTLE_MS (pause before each open loop, default 10000; a closed loop waits a
 * second at most), QUOTA_BENCH_RATE (open-loop calls/s, default 2000), QUOTA_BENCH_CONCURRENCY
 * (default 64), QUOTA_BENCH_WATCHERS (default 500), QUOTA_BENCH_SCENARIOS, QUOTA_BENCH_CLIENT
 * (http2, a minimal gRPC client on a TCP socket that leaves the CPU to the server, the default;
 * or grpc-js), DATABASE_URL (the database to use instead of an embedded one; no database CPU
 * figure then), QUOTA_BENCH_TARGET=host:port (a running service to measure instead of starting
 * one, with QUOTA_BENCH_TOKEN, an admin token of it: no CPU or memory figures, and no baselines,
 * which need this machine's server and database). QUOTA_* variables reach the servers started.
 */
import { connect } from '@quota-authority/client';
import { auditBench } from './audit.js';
import type { SuiteResults } from './checkTargets.js';
import { commandQuotaBench } from './commandQuota.js';
import { floorBench } from './floorBench.js';
import { printReport } from './printReport.js';
import { runPeerSuite } from './runPeerSuite.js';
import { runServerSuite } from './runServerSuite.js';
import { COMMAND_SCENARIOS, SCENARIOS } from './settings.js';
import { soakBench } from './soak.js';
import { startBenchDatabase } from './startBenchDatabase.js';
import { startServer, waitServing } from './startServer.js';
import { SUITE } from './suite.js';

async function main(): Promise<void> {
  const started = performance.now();
  const target = process.env['QUOTA_BENCH_TARGET'];
  await suite(target);
  if (COMMAND_SCENARIOS.some((s) => SCENARIOS.has(s))) await commandDetail(target);
  if (SCENARIOS.has('audit')) {
    if (target) console.log('audit: skipped, QUOTA_BENCH_TARGET is set');
    else await auditBench();
  }
  if (SCENARIOS.has('floor')) {
    // The floor is this machine's: against a server elsewhere it would say nothing about it.
    if (target) console.log('floor: skipped, QUOTA_BENCH_TARGET is set');
    else await floorBench();
  }
  if (SCENARIOS.has('soak')) {
    // Its verdict is the server's memory, which is read from /proc on this machine.
    if (target) console.log('soak: skipped, QUOTA_BENCH_TARGET is set');
    else await soakBench();
  }
  console.log(`\nbench: ${Math.round((performance.now() - started) / 1000)} s in all`);
}

/** The selected suite scenarios against the service, then their baselines; then the report. */
async function suite(target: string | undefined): Promise<void> {
  const selected = SUITE.filter((s) => SCENARIOS.has(s.name));
  let noop = SCENARIOS.has('noop');
  let peer = SCENARIOS.has('peer');
  if (target && (noop || peer)) {
    console.log('noop, peer: skipped, QUOTA_BENCH_TARGET is set');
    noop = peer = false;
  }
  if (selected.length === 0 && !noop && !peer) return;
  // Baselines asked for alone: those of every scenario.
  const compared = selected.length > 0 ? selected : SUITE;
  const baselines = new Set(compared.map((s) => s.noop));
  const db = target ? undefined : await startBenchDatabase();
  let results: SuiteResults;
  try {
    // In this order: the service, then the no-op baseline, then the peer.
    results = {
      service: await runServerSuite('service', selected, db),
      noop: noop
        ? await runServerSuite(
            'no-op',
            SUITE.filter((s) => baselines.has(s.name)),
            db,
          )
        : new Map(),
      peer: peer && db ? await runPeerSuite(db, new Set(compared.map((s) => s.peer))) : new Map(),
    };
  } finally {
    await db?.stop();
  }
  printReport(results);
}

/** The command-quota detail scenarios (commandQuota.ts), on a server of their own. */
async function commandDetail(target: string | undefined): Promise<void> {
  const server = target ? undefined : await startServer();
  const address = target ?? server!.address;
  const token = target ? process.env['QUOTA_BENCH_TOKEN'] : server!.token;
  const client = connect({ address, token, deadlineMs: 10_000 });
  try {
    await waitServing(client);
    await commandQuotaBench({ address, client, token, pid: server?.child.pid });
  } finally {
    client.close();
    await server?.stop();
  }
}

// Exiting runs the 'exit' listeners that stop the servers and the database the bench started.
process.once('SIGINT', () => process.exit(130));
process.once('SIGTERM', () => process.exit(143));

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
