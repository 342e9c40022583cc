/** The bench's knobs, from the environment (see main.ts) and `--only`. */

export const SECONDS = Number(process.env['QUOTA_BENCH_SECONDS'] ?? 5);
export const WARMUP_SECONDS = Number(process.env['QUOTA_BENCH_WARMUP_SECONDS'] ?? SECONDS);
export const RATE = Number(process.env['QUOTA_BENCH_RATE'] ?? 2000);
export const CONCURRENCY = Number(process.env['QUOTA_BENCH_CONCURRENCY'] ?? 64);
export const SETTLE_MS = Number(process.env['QUOTA_BENCH_SETTLE_MS'] ?? 10_000);
export const WATCHERS = Number(process.env['QUOTA_BENCH_WATCHERS'] ?? 500);
/**
 * The soak's offered rate (soak.ts), calls/s. 500: a mix call costs the server, the database
 * and this client together 1.0 – 1.3 ms of CPU on this project's 2-core machine when it is
 * shared, and other processes there keep about a core busy; at 1,000/s the bench took the other
 * core and the server shed 681 of 90,000 calls (decisions that waited past QUOTA_DB_TIMEOUT_MS
 * behind the CPU), at 500/s it took 0.64 of a core and shed 1 of 45,000. The soak measures what
 * time does to the server's memory, not how far the machine can be pushed (the suite does that).
 */
export const SOAK_RATE = Number(process.env['QUOTA_BENCH_SOAK_RATE'] ?? 500);
/** How long the soak offers its calls, in seconds. */
export const SOAK_SECONDS = Number(process.env['QUOTA_BENCH_SOAK_SECONDS'] ?? 600);
export const CLIENT: 'http2' | 'grpc-js' =
  process.env['QUOTA_BENCH_CLIENT'] === 'grpc-js' ? 'grpc-js' : 'http2';

/**
 * The scenarios of the suite (suite.ts), each measured at CONCURRENCY in flight and at RATE
 * offered, against the service and its no-op baseline.
 */
export const SUITE_SCENARIOS = [
  'keys',
  'hot',
  'batch-keys',
  'batch-hot',
  'quota',
  'record',
  'mix',
  'watch',
] as const;
/** The baselines the suite's scenarios are compared with. */
export const BASELINES = ['noop', 'peer'] as const;
/** The command-quota scenarios in detail (commandQuota.ts), on a server of their own. */
export const COMMAND_SCENARIOS = [
  'quota-users',
  'quota-one',
  'record-users',
  'record-one',
  'record-users-unreserved',
  'record-one-unreserved',
] as const;
/**
 * Outside the default run: the command-quota detail, the audit's cost (audit.ts: CheckLimit
 * denials at RATE with QUOTA_AUDIT off and on), the floor (floorServer.ts) and the soak
 * (soak.ts: the mix at SOAK_RATE for SOAK_SECONDS, the server's memory and errors per minute).
 */
export const EXTRA_SCENARIOS = [...COMMAND_SCENARIOS, 'audit', 'floor', 'soak'] as const;
export type SuiteScenario = (typeof SUITE_SCENARIOS)[number];
export type ScenarioName =
  SuiteScenario | (typeof BASELINES)[number] | (typeof EXTRA_SCENARIOS)[number];

/** Names that stand for several scenarios. */
const GROUPS: Record<string, readonly ScenarioName[]> = {
  all: [...SUITE_SCENARIOS, ...BASELINES],
  limit: ['keys', 'hot', 'batch-keys', 'batch-hot', ...BASELINES],
  baselines: BASELINES,
  command: COMMAND_SCENARIOS,
  record: COMMAND_SCENARIOS.filter((s) => s.startsWith('record-')),
};

/**
 * The scenarios to run: `--only a,b` on the command line, else QUOTA_BENCH_SCENARIOS, else all.
 * Names are scenarios or the groups `all` (the suite and both baselines), `limit` (the CheckLimit
 * scenarios and both baselines), `baselines` (noop, peer), `command` (every command-quota detail
 * scenario) and `record` (the RecordExecution ones among them).
 */
function selectedScenarios(): ReadonlySet<ScenarioName> {
  const at = process.argv.indexOf('--only');
  const list = at >= 0 ? process.argv[at + 1] : (process.env['QUOTA_BENCH_SCENARIOS'] ?? 'all');
  const known: readonly string[] = [...SUITE_SCENARIOS, ...BASELINES, ...EXTRA_SCENARIOS];
  const out = new Set<ScenarioName>();
  for (const name of (list ?? '').split(',').map((s) => s.trim())) {
    if (name === '') continue;
    const group = GROUPS[name];
    if (group) group.forEach((s) => out.add(s));
    else if (known.includes(name)) out.add(name as ScenarioName);
    else throw new Error(`unknown scenario ${name}: use ${[...Object.keys(GROUPS), ...known]}`);
  }
  return out;
}

export const SCENARIOS = selectedScenarios();

/**
 * A pause before each open loop, so that what the one before left behind (autovacuum of the rows
 * it updated, the garbage of its calls) is not measured as this one's latency. 10 s, because V8's
 * memory reducer collects the old generation of an idle process only 8 s after its allocation
 * drops; after 3 s the collection of a closed-loop scenario's garbage fell inside the open loop.
 */
export const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, SETTLE_MS));

/**
 * The pause before a closed loop: a second at most. A collection that falls inside a closed loop
 * costs it a few tens of milliseconds out of SECONDS, not its figure.
 */
export const pause = (): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, Math.min(SETTLE_MS, 1000)));
