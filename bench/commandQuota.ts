/**
 * The command-quota scenarios of `npm run bench`: CheckCommandQuota and RecordExecution (durable)
 * at CONCURRENCY in flight, over 10,000 users (u0..u9999) and over one user, command type shell.
 *
 * - quota-users: CheckCommandQuota over the 10,000 users, under the default shell rule (500 a
 *   day per user: the bench counts well under 20 per user, so it admits; the denied count
 *   printed shows it).
 * - quota-one: the same for one user, with a per-user shell rule of 10^12 per period (the
 *   default 500 a day would deny almost every call), deleted at the end.
 * - record-users, record-one: RecordExecution settling reservations obtained beforehand by
 *   CheckCommandQuota (the executor's flow: check, run, record): those the warm-up and the
 *   quota-* scenario admitted, oldest first, topped up beforehand (unmeasured) to 7,000 a
 *   second for SECONDS. A scenario that uses them all ends early and says so.
 * - record-users-unreserved, record-one-unreserved: RecordExecution with no reservation, each
 *   counted when recorded.
 *
 * Every execution is a realistic record: host, duration, CPU, memory, and one in 20 failed
 * (exit code 1). No call carries a request_id, as in the CheckLimit scenarios.
 */
import type { QuotaConnection } from '@quota-authority/client';
import { CommandQuotaRule } from '../clients/typescript/src/gen/quota/v1/types.js';
import { checkCommand, COMMAND_TYPE, recordCommand, Reservations, userOf } from './commandCalls.js';
import { CHECK_COMMAND_QUOTA, RECORD_EXECUTION } from './LightClient.js';
import { caller, closedLoop, measured, Tally } from './measure.js';
import {
  CLIENT,
  COMMAND_SCENARIOS,
  CONCURRENCY,
  SCENARIOS,
  SECONDS,
  settle,
  WARMUP_SECONDS,
  type ScenarioName,
} from './settings.js';

const ONE_USER = 'bench-one-user';
/**
 * Reservations on hand before a record-* scenario: enough for this many calls a second (more
 * than measured so far) for SECONDS. A scenario that uses them all ends early and says so.
 */
const RESERVED_PER_SECOND = 7_000;
/** The one user's per-user limit in every period. */
const ONE_USER_LIMIT = 1_000_000_000_000;

export interface BenchTarget {
  readonly address: string;
  readonly client: QuotaConnection;
  readonly token: string | undefined;
  /** The server's pid, when it is a local child: CPU per call is then measured. */
  readonly pid: number | undefined;
}

/** Runs the selected command-quota scenarios against `target`. */
export async function commandQuotaBench(target: BenchTarget): Promise<void> {
  if (!COMMAND_SCENARIOS.some((s) => SCENARIOS.has(s))) return;
  const { address, client, token, pid } = target;
  await giveOneUserRoom(client);
  const checker = caller(
    address,
    CHECK_COMMAND_QUOTA,
    (req, metadata, callback) => client.raw.quota.checkCommandQuota(req, metadata, callback),
    token,
  );
  const recorder = caller(
    address,
    RECORD_EXECUTION,
    (req, metadata, callback) => client.raw.quota.recordExecution(req, metadata, callback),
    token,
  );
  const check = checker.call;
  const record = recorder.call;
  const pools = { users: new Reservations(), one: new Reservations() };
  const who = {
    users: { label: '10,000 users', user: userOf, pool: pools.users },
    one: { label: 'one user', user: () => ONE_USER, pool: pools.one },
  } as const;
  const inFlight = `${CONCURRENCY} in flight`;
  try {
    console.log(
      `quota-authority command-quota bench against ${address}: ${SECONDS} s per scenario, ${inFlight}, ${CLIENT} client, command type ${COMMAND_TYPE}`,
    );
    // Warm-up of both methods (statements, plpgsql plans, JIT); its reservations are kept for
    // the record scenarios.
    const quarter = WARMUP_SECONDS / 4;
    for (const w of [who.users, who.one]) {
      await closedLoop(
        new Tally('warm-up'),
        (i) => checkCommand(check, w.user(i), w.pool),
        quarter,
      );
    }
    for (const w of [who.users, who.one]) {
      await closedLoop(new Tally('warm-up'), (i) => recordCommand(record, i, w.user(i)), quarter);
    }

    const scenario = async (name: ScenarioName, run: () => Promise<Tally>) => {
      if (!SCENARIOS.has(name)) return;
      await settle();
      await measured(pid, run);
    };
    for (const [name, w] of [
      ['quota-users', who.users],
      ['quota-one', who.one],
    ] as const) {
      await scenario(name, () =>
        closedLoop(new Tally(`CheckCommandQuota, ${w.label}, ${inFlight}`), (i) =>
          checkCommand(check, w.user(i), w.pool),
        ),
      );
    }
    for (const [name, w] of [
      ['record-users', who.users],
      ['record-one', who.one],
    ] as const) {
      if (!SCENARIOS.has(name)) continue;
      // Enough for RESERVED_PER_SECOND for SECONDS, obtained now, not measured.
      await closedLoop(
        new Tally('reservations'),
        (i) =>
          w.pool.available < RESERVED_PER_SECOND * SECONDS
            ? checkCommand(check, w.user(i), w.pool)
            : undefined,
        10 * SECONDS,
      );
      await scenario(name, () =>
        closedLoop(
          new Tally(`RecordExecution reserved, ${w.label}, ${inFlight}`, 'stored'),
          (i) => {
            const r = w.pool.take();
            return r && recordCommand(record, i, r.userId, r.reservationId);
          },
        ),
      );
    }
    for (const [name, w] of [
      ['record-users-unreserved', who.users],
      ['record-one-unreserved', who.one],
    ] as const) {
      await scenario(name, () =>
        closedLoop(
          new Tally(`RecordExecution unreserved, ${w.label}, ${inFlight}`, 'stored'),
          (i) => recordCommand(record, i, w.user(i)),
        ),
      );
    }
  } finally {
    checker.close();
    recorder.close();
    await client.admin.deleteCommandQuotaRule({ userId: ONE_USER, commandType: COMMAND_TYPE });
  }
}

/**
 * A per-user shell rule for the one user, large enough never to deny; resolves once the server
 * decides by it (its rule cache follows the change within a second).
 */
async function giveOneUserRoom(client: QuotaConnection): Promise<void> {
  await client.admin.upsertCommandQuotaRule({
    rule: CommandQuotaRule.fromPartial({
      userId: ONE_USER,
      commandType: COMMAND_TYPE,
      daily: ONE_USER_LIMIT,
      weekly: ONE_USER_LIMIT,
      monthly: ONE_USER_LIMIT,
      cpuEstimatePercent: 10,
      memoryEstimateBytes: 100_000_000,
    }),
  });
  const until = Date.now() + 10_000;
  for (;;) {
    const status = await client.quota.getQuotaStatus({ userId: ONE_USER });
    const shell = status.commands.find((c) => c.commandType === COMMAND_TYPE);
    if (shell?.periods.every((p) => p.limit === ONE_USER_LIMIT)) return;
    if (Date.now() > until) throw new Error(`the rule for ${ONE_USER} is not in force after 10 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
