// QuotaExecutor against a running quota-authority: a child process and a function run for a
// user under a command quota of 3 a day, the user's quota status, then a run over quota.
//
//   QUOTA_TOKEN=<admin token> node clients/typescript/examples/executor.mjs
//
// QUOTA_ADDRESS (default 127.0.0.1:50051) names the server. The token must be an admin's: the
// example sets the quota rule of its user (a fresh one per run, so that it can run again).
// QUOTA_EXECUTOR_HOST names this executor's host (default: os.hostname(), the name a server on
// this machine samples its own load under); QUOTA_REPORT_LOAD=0 turns off its load reports.
import {
  connect,
  CommandDeniedError,
  QuotaExceededError,
  QuotaExecutor,
  quotaV1,
  typesV1,
} from '@quota-authority/client';

const address = process.env.QUOTA_ADDRESS ?? '127.0.0.1:50051';
const token = process.env.QUOTA_TOKEN;
if (!token) {
  console.error('Set QUOTA_TOKEN to an admin token (`npm start` prints one at its first start).');
  process.exit(2);
}

const connection = connect({ address, token });
const executor = new QuotaExecutor(connection, {
  host: process.env.QUOTA_EXECUTOR_HOST || undefined,
  reportLoad: process.env.QUOTA_REPORT_LOAD !== '0',
});
const userId = `example-${Date.now().toString(36)}`;
const commandType = 'example';

/** The parts of a run's result worth a look. */
const summary = (r) => ({
  value: r.value,
  status: r.status,
  executionId: r.executionId,
  tier: r.tier,
  delayMs: r.delayMs,
  measurements: r.measurements,
  periods: r.periods.map((p) => `${p.period}: ${p.used} of ${p.unlimited ? 'unlimited' : p.limit}`),
});

/**
 * Runs `task` and prints its result; a denial (over quota, or a host too loaded to run
 * anything) is a normal answer, printed too.
 */
async function attempt(label, task) {
  try {
    const r = await executor.run(userId, commandType, task);
    console.log(`\n${label}:`, summary(r));
  } catch (err) {
    if (!(err instanceof CommandDeniedError)) throw err;
    console.log(`\n${label}: ${err.name}: ${err.message}`);
    if (err instanceof QuotaExceededError)
      console.log({ exceeded: err.exceeded, retryAt: err.retryAt, periods: err.periods });
  }
}

try {
  await connection.admin.upsertCommandQuotaRule({
    rule: typesV1.CommandQuotaRule.fromPartial({ userId, commandType, daily: 3 }),
  });
  console.log(`user ${userId}: ${commandType} commands limited to 3 a day (host ${executor.host})`);

  // A child process, spawned without a shell: ~20 MB touched, ~100 ms of CPU, exit code 0.
  await attempt('child process', {
    command: process.execPath,
    args: [
      '-e',
      `const b = Buffer.alloc(20e6, 1);
       while (process.cpuUsage().user < 100e3) b[0]++;
       console.log('hello from a child process');`,
    ],
  });

  // A function: its value is the run's.
  await attempt('function', async ({ signal }) => {
    await new Promise((resolve) => setTimeout(resolve, 50));
    signal.throwIfAborted();
    return 6 * 7;
  });

  // The user's usage of this command type and its last 24 h of executions, as proto3 JSON.
  const status = await connection.quota.getQuotaStatus({ userId });
  const mine = status.commands.find((c) => c.commandType === commandType);
  console.log(
    `\nGetQuotaStatus (tier ${status.tier}, ${commandType}):`,
    JSON.stringify(mine && quotaV1.CommandQuotaStatus.toJSON(mine), null, 2),
  );

  // The third run is the last the day admits; the fourth is denied before it runs.
  await attempt('run 3', () => 'the last one today');
  await attempt('run 4', () => 'never runs');
} finally {
  executor.close();
  connection.close();
}
