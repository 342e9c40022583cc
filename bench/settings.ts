/** The bench's knobs, from the environment (see main.ts) and `--only`. */

export const SECONDS = Number(process.env['QUOTA_BENCH_SECONDS'] ?? 10);
export const WARMUP_SECONDS = Number(process.env['QUOTA_BENCH_WARMUP_SECONDS'] ?? SECONDS);
export const RATE = Number(process.env['QUOTA_BENCH_RATE'] ?? 2000);
export const CONCURRENCY = Number(process.env['QUOTA_BENCH_CONCURRENCY'] ?? 64);
export const SETTLE_MS = Number(process.env['QUOTA_BENCH_SETTLE_MS'] ?? 10_000);
export const CLIENT: 'http2' | 'grpc-js' =
  process.env['QUOTA_BENCH_CLIENT'] === 'grpc-js' ? 'grpc-js' : 'http2';

/** The CheckLimit scenarios and the floor. */
export const LIMIT_SCENARIOS = ['keys', 'hot', 'open', 'floor'] as const;
/** The command-quota scenarios (CheckCommandQuota and RecordExecution). */
export const COMMAND_SCENARIOS = [
  'quota-users',
  'quota-one',
  'record-users',
  'record-one',
  'record-users-unreserved',
  'record-one-unreserved',
] as const;
/** The audit's cost: CheckLimit denials at RATE with QUOTA_AUDIT off and on (audit.ts). */
export const AUDIT_SCENARIOS = ['audit'] as const;
export type ScenarioName =
  | (typeof LIMIT_SCENARIOS)[number]
  | (typeof COMMAND_SCENARIOS)[number]
  | (typeof AUDIT_SCENARIOS)[number];

/** Names that stand for several scenarios. */
const GROUPS: Record<string, readonly ScenarioName[]> = {
  all: [...LIMIT_SCENARIOS, ...COMMAND_SCENARIOS, ...AUDIT_SCENARIOS],
  limit: LIMIT_SCENARIOS,
  command: COMMAND_SCENARIOS,
  record: COMMAND_SCENARIOS.filter((s) => s.startsWith('record-')),
};

/**
 * The scenarios to run: `--only a,b` on the command line, else QUOTA_BENCH_SCENARIOS, else all.
 * Names are scenarios or the groups `all`, `limit` (keys,hot,open,floor), `command` (every
 * command-quota scenario) and `record` (the RecordExecution ones).
 */
function selectedScenarios(): ReadonlySet<ScenarioName> {
  const at = process.argv.indexOf('--only');
  const list = at >= 0 ? process.argv[at + 1] : (process.env['QUOTA_BENCH_SCENARIOS'] ?? 'all');
  const known: readonly string[] = GROUPS['all']!;
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
 * A pause before each scenario, so that what the one before left behind (autovacuum of the rows
 * it updated, the garbage of its calls) is not measured as this one. 10 s, because V8's memory
 * reducer collects the old generation of an idle process only 8 s after its allocation drops;
 * after 3 s the collection of a closed-loop scenario's garbage fell inside the open loop.
 */
export const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
