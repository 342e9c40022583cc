import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  connect,
  Period,
  QuotaCallError,
  RateLimitRule,
  Scope,
  typesV1,
  type CheckCommandQuotaResponse,
  type CheckLimitResponse,
  type ConnectOptions,
  type QuotaConnection,
} from '@quota-authority/client';
import {
  killServerProcess,
  startServerProcesses,
  type ServerProcess,
} from '../support/serverProcess.js';
import { checkRecorder } from '../support/checkRecorder.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';
import { waitFor } from '../support/waitFor.js';
import { sqlSession } from '../support/sqlSession.js';

// Three server processes (the build that `npm ci` makes) on one database: bursts of 300 callers
// on one key spread over them, and a replica killed with SIGKILL with decisions in flight while
// its callers retry the same request_ids on another. The processes start once for the file; the
// kills come last.

const CALLERS = 300;
const LIMIT = 50;
const COMMAND_TYPE = 'replicated';
const TOKEN = 'three-replicas-test-token-0123456789abcdef';

let db: TestDatabase;
let replicas: ServerProcess[] = [];
const connections: QuotaConnection[] = [];

/** host:port of a server process. */
const addressOf = (p: ServerProcess) =>
  p.client.raw.quota.getChannel().getTarget().replace(/^dns:/, '');

/** A connection of the test's own; closed after the file. */
function open(p: ServerProcess, options: Omit<ConnectOptions, 'address'>) {
  const c = connect({ address: addressOf(p), token: TOKEN, deadlineMs: 10_000, ...options });
  connections.push(c);
  return c;
}

beforeAll(async () => {
  db = await createTestDatabase();
  // The claims are exactness and no loss, not latency: a generous bound keeps a busy box from
  // turning slow answers into failure-mode ones.
  const env = { QUOTA_DB_TIMEOUT_MS: '5000', QUOTA_ADMIN_TOKEN: TOKEN };
  replicas = await startServerProcesses(db.url, [env, env, env]);
});

afterAll(async () => {
  for (const c of connections) c.close();
  for (const r of replicas) killServerProcess(r);
  await db?.drop();
});

/** The replicas not killed yet (the kill tests come last; replicas[1] is never killed). */
const alive = () =>
  replicas.filter((r) => r.child.exitCode === null && r.child.signalCode === null);

/** A rule of `limit` calls per 10 minutes for the user `key` alone, applied on every replica. */
async function limitUser(name: string, key: string, limit: number): Promise<void> {
  await replicas[1]!.client.admin.upsertRateLimitRule({
    rule: RateLimitRule.fromPartial({
      name,
      scope: Scope.SCOPE_USER,
      match: key,
      limit,
      window: { seconds: 600, nanos: 0 },
    }),
  });
  // Every replica applies it before the burst.
  for (const r of alive()) {
    await waitFor(async () => {
      const probe = await r.client.quota.checkLimit({ userId: key, resource: 'probe' });
      return probe.limits.some((l) => l.rule === name);
    }, 15_000);
  }
  // The probes counted on the key: the burst starts from no count.
  await db.query(`DELETE FROM rate_limit_counters WHERE rule = $1`, [name]);
}

/** A daily limit of `daily` commands of COMMAND_TYPE for `userId`, applied on every replica. */
async function limitCommands(userId: string, daily: number): Promise<void> {
  await replicas[1]!.client.admin.upsertCommandQuotaRule({
    rule: typesV1.CommandQuotaRule.fromPartial({ userId, commandType: COMMAND_TYPE, daily }),
  });
  for (const r of alive()) {
    await waitFor(async () => {
      const s = await r.client.quota.getQuotaStatus({ userId });
      const command = s.commands.find((c) => c.commandType === COMMAND_TYPE);
      return command?.periods.find((p) => p.period === Period.PERIOD_DAILY)?.limit === daily;
    }, 15_000);
  }
}

/** What a call came to: a decision, the failure mode, shed, or another error's code. */
function outcome(answer: { allowed: boolean; degraded: boolean }): string {
  return answer.degraded ? 'degraded' : answer.allowed ? 'allowed' : 'denied';
}
function failure(err: unknown): string {
  if (err instanceof QuotaCallError && err.code === status.RESOURCE_EXHAUSTED) return 'shed';
  return `error ${err instanceof QuotaCallError ? err.code : String(err)}`;
}
function tally(outcomes: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const o of outcomes) counts[o] = (counts[o] ?? 0) + 1;
  return counts;
}

/** The outcomes other than a decision or a shed call: none on a healthy database. */
function unexpected(counts: Record<string, number>): Record<string, number> {
  return Object.fromEntries(
    Object.entries(counts).filter(([o]) => !['allowed', 'denied', 'shed'].includes(o)),
  );
}

async function storedCount(rule: string, key: string): Promise<number> {
  const row = await db.query<{ curr: string }>(
    `SELECT curr FROM rate_limit_counters WHERE rule = $1 AND key = $2`,
    [rule, key],
  );
  return Number(row.rows[0]?.curr ?? 0);
}

async function storedUsage(userId: string): Promise<{ used: number; reservations: string[] }> {
  const usage = await db.query<{ day_used: string }>(
    `SELECT day_used FROM command_usage WHERE user_id = $1 AND command_type = $2`,
    [userId, COMMAND_TYPE],
  );
  const reservations = await db.query<{ id: string }>(
    `SELECT id FROM command_reservations WHERE user_id = $1 AND command_type = $2`,
    [userId, COMMAND_TYPE],
  );
  return {
    used: Number(usage.rows[0]?.day_used ?? 0),
    reservations: reservations.rows.map((r) => r.id).sort(),
  };
}

describe(`three replicas, ${CALLERS} concurrent callers on one key with a limit of ${LIMIT}`, () => {
  it(`CheckLimit admits exactly ${LIMIT}, denies or sheds the rest, none degraded, and stores ${LIMIT}`, async () => {
    await limitUser('three-single', 'hot-single', LIMIT);
    const outcomes = await Promise.all(
      Array.from({ length: CALLERS }, (_, i) =>
        replicas[i % replicas.length]!.client.quota.checkLimit({ userId: 'hot-single' }).then(
          outcome,
          failure,
        ),
      ),
    );
    const counts = tally(outcomes);
    console.log(`three replicas, CheckLimit: ${JSON.stringify(counts)}`);
    expect(unexpected(counts)).toEqual({});
    expect(counts['allowed']).toBe(LIMIT);
    expect((counts['denied'] ?? 0) + (counts['shed'] ?? 0)).toBe(CALLERS - LIMIT);
    expect(await storedCount('three-single', 'hot-single')).toBe(LIMIT);
  });

  it(`CheckLimits (the client's batching) admits exactly ${LIMIT}, denies or sheds the rest, none degraded, and stores ${LIMIT}`, async () => {
    await limitUser('three-batched', 'hot-batched', LIMIT);
    // What each connection sent: checks in CheckLimits calls, and CheckLimit calls.
    const rec = checkRecorder();
    // Two connections per replica with the default batching, each ready before the burst.
    const clients = replicas.flatMap((r) =>
      [0, 1].map(() => open(r, { channelOptions: { interceptors: [rec.interceptor] } })),
    );
    await Promise.all(clients.map((c) => c.quota.checkLimit({ userId: 'warm' })));
    rec.calls.length = 0;

    const outcomes = await Promise.all(
      Array.from({ length: CALLERS }, (_, i) =>
        clients[i % clients.length]!.quota.checkLimit({ userId: 'hot-batched' }).then(
          outcome,
          failure,
        ),
      ),
    );
    const counts = tally(outcomes);
    const batches = rec.calls.filter((c) => c.method === 'CheckLimits');
    const sent = {
      batched: batches.reduce((n, c) => n + c.checks.length, 0),
      single: rec.calls.filter((c) => c.method === 'CheckLimit').length,
      batches: batches.length,
    };
    console.log(
      `three replicas, CheckLimits: ${JSON.stringify(counts)}, sent ${JSON.stringify(sent)}`,
    );
    // Each check went once (no request_id: never retried), most of them in CheckLimits calls.
    expect(sent.batched + sent.single).toBe(CALLERS);
    expect(sent.batched).toBeGreaterThanOrEqual(CALLERS / 2);
    expect(unexpected(counts)).toEqual({});
    expect(counts['allowed']).toBe(LIMIT);
    expect((counts['denied'] ?? 0) + (counts['shed'] ?? 0)).toBe(CALLERS - LIMIT);
    expect(await storedCount('three-batched', 'hot-batched')).toBe(LIMIT);
  });

  it(`CheckCommandQuota admits exactly ${LIMIT}, denies or sheds the rest, none degraded, and stores ${LIMIT}`, async () => {
    await limitCommands('hot-commands', LIMIT);
    const answers: CheckCommandQuotaResponse[] = [];
    const outcomes = await Promise.all(
      Array.from({ length: CALLERS }, (_, i) =>
        replicas[i % replicas.length]!.client.quota.checkCommandQuota({
          userId: 'hot-commands',
          commandType: COMMAND_TYPE,
        }).then((a) => {
          answers.push(a);
          return outcome(a);
        }, failure),
      ),
    );
    const counts = tally(outcomes);
    console.log(`three replicas, CheckCommandQuota: ${JSON.stringify(counts)}`);
    expect(unexpected(counts)).toEqual({});
    expect(counts['allowed']).toBe(LIMIT);
    expect((counts['denied'] ?? 0) + (counts['shed'] ?? 0)).toBe(CALLERS - LIMIT);
    expect(answers.filter((a) => !a.allowed && a.reason !== 'QUOTA_EXCEEDED: daily')).toEqual([]);
    // Stored: the usage and one reservation per admitted call, under the ids the callers got.
    const admitted = answers.filter((a) => a.allowed).map((a) => a.reservationId);
    expect(await storedUsage('hot-commands')).toEqual({
      used: LIMIT,
      reservations: admitted.sort(),
    });
  });
});

/** What a burst on a replica killed in its middle came to, and its retries on another. */
interface KilledBurst<T> {
  /** The killed replica's answers, by request_id: those that arrived before it died. */
  readonly first: Map<string, T>;
  /** Calls to it that failed. */
  readonly failed: number;
  /** The other replica's answer to each request_id, in order. */
  readonly retried: T[];
  /** Request_ids the killed replica decided (stored) whose answer never arrived. */
  readonly decidedUnanswered: number;
}

const KILL_CALLS = 300;
const KILL_LIMIT = 150;

/** Clients' sessions on the test's database running a statement, other than the asking one. */
async function activeSessions(waitingForLock = false): Promise<number> {
  const r = await db.query<{ n: string }>(
    `SELECT count(*) AS n FROM pg_stat_activity
      WHERE datname = current_database() AND pid <> pg_backend_pid()
        AND backend_type = 'client backend' AND state = 'active'
        AND ($1::boolean IS FALSE OR wait_event_type = 'Lock')`,
    [waitingForLock],
  );
  return Number(r.rows[0]!.n);
}

/**
 * KILL_CALLS calls with request_ids `prefix-0…` sent to `victim` by 20 callers, each sending its
 * share one after another. Once a third are answered, the test holds the row `lock` selects
 * (FOR UPDATE) and kills the victim with SIGKILL while its next decisions wait for that row in
 * the database: they are decided after their caller is gone, answers never sent. The row is let
 * go, the victim's last statements end, and every request_id goes again to `survivor`, until it
 * decides it (a shed call is sent again). No retries of the client's own: which call failed on
 * the victim, and what the survivor answers, is the test's to see.
 */
async function killMidBurst<T extends { degraded: boolean }>(
  victim: ServerProcess,
  survivor: ServerProcess,
  prefix: string,
  lock: { text: string; values: unknown[] },
  send: (c: QuotaConnection, requestId: string) => Promise<T>,
): Promise<KilledBurst<T>> {
  const onVictim = open(victim, { retry: false, batching: false });
  const onSurvivor = open(survivor, { retry: false, batching: false });
  await Promise.all([onVictim, onSurvivor].map((c) => c.quota.checkLimit({ userId: 'warm' })));
  const holder = await sqlSession(db.url);
  try {
    const ids = Array.from({ length: KILL_CALLS }, (_, i) => `${prefix}-${i}`);
    const first = new Map<string, T>();
    const failed: string[] = [];
    // Set once a third are answered: callers wait for the row to be held before their next call.
    let held: Promise<unknown> | undefined;
    const callers = Array.from({ length: 20 }, async (_, c) => {
      for (let i = c; i < KILL_CALLS; i += 20) {
        await held;
        const id = ids[i]!;
        try {
          first.set(id, await send(onVictim, id));
          if (first.size === KILL_CALLS / 3) {
            held = holder.query('BEGIN').then(() => holder.query(lock.text, lock.values));
          }
        } catch (err) {
          failed.push(failure(err));
        }
      }
    });
    await waitFor(() => held !== undefined, 15_000);
    await held;
    await waitFor(async () => (await activeSessions(true)) > 0);
    killServerProcess(victim);
    expect(await victim.exited).toBeNull();
    await holder.query('ROLLBACK');
    await Promise.all(callers);
    // The victim's statements are done once nothing is active: whatever they decided is stored.
    await waitFor(async () => (await activeSessions()) === 0);
    const retriesFrom = new Date();

    const retried = await Promise.all(
      ids.map(async (id) => {
        for (let attempt = 1; ; attempt++) {
          try {
            return await send(onSurvivor, id);
          } catch (err) {
            if (failure(err) !== 'shed' || attempt === 10) throw err;
            await new Promise((r) => setTimeout(r, 50 * attempt));
          }
        }
      }),
    );
    // Stored before the first retry was sent: by the victim, whether or not its answer arrived.
    const stored = await db.query<{ id: string }>(
      `SELECT split_part(key, ':', 2) AS id FROM idempotency_keys
        WHERE split_part(key, ':', 2) LIKE $1 AND expires_at - interval '24 hours' < $2`,
      [`${prefix}-%`, retriesFrom],
    );
    const decidedUnanswered = stored.rows.filter((r) => !first.has(r.id)).length;
    console.log(
      `${prefix}: the killed replica answered ${first.size} of ${KILL_CALLS}, failed ` +
        `${JSON.stringify(tally(failed))}, decided ${decidedUnanswered} it never answered`,
    );
    return { first, failed: failed.length, retried, decidedUnanswered };
  } finally {
    await holder.end();
  }
}

describe('a replica killed with SIGKILL with decisions in flight, its callers retrying with the same request_id on another', () => {
  it('CheckLimit: counts each request_id once, and answers each retry as it was first answered', async () => {
    await limitUser('three-killed', 'killed-key', KILL_LIMIT);
    const [victim, survivor] = replicas as [ServerProcess, ServerProcess];
    const burst = await killMidBurst(
      victim,
      survivor,
      'limit-kill',
      {
        text: `SELECT 1 FROM rate_limit_counters WHERE rule = $1 AND key = $2 FOR UPDATE`,
        values: ['three-killed', 'killed-key'],
      },
      (c, requestId) => c.quota.checkLimit({ userId: 'killed-key', requestId }),
    );
    // Mid-burst: some answers arrived, other calls failed, and some of those were decided.
    expect(burst.first.size).toBeGreaterThanOrEqual(KILL_CALLS / 3);
    expect(burst.first.size + burst.failed).toBe(KILL_CALLS);
    expect(burst.decidedUnanswered).toBeGreaterThan(0);
    expect(burst.retried.filter((x) => x.degraded)).toEqual([]);
    // A retry of what the victim answered is its answer: admitted or not, the same remaining.
    const same = (x: CheckLimitResponse) =>
      JSON.stringify([x.allowed, x.limits.map((l) => [l.rule, l.remaining, l.exceeded])]);
    const differs = burst.retried.filter((x, i) => {
      const f = burst.first.get(`limit-kill-${i}`);
      return f !== undefined && same(f) !== same(x);
    });
    expect(differs).toEqual([]);
    // Each request_id counted once: exactly the limit admitted, and what is stored.
    expect(burst.retried.filter((x) => x.allowed)).toHaveLength(KILL_LIMIT);
    expect(await storedCount('three-killed', 'killed-key')).toBe(KILL_LIMIT);
  });

  it('CheckCommandQuota: counts each request_id once, and answers each retry as it was first answered', async () => {
    await limitCommands('killed-user', KILL_LIMIT);
    const [, survivor, victim] = replicas as [ServerProcess, ServerProcess, ServerProcess];
    const burst = await killMidBurst(
      victim,
      survivor,
      'quota-kill',
      {
        text: `SELECT 1 FROM command_usage WHERE user_id = $1 AND command_type = $2 FOR UPDATE`,
        values: ['killed-user', COMMAND_TYPE],
      },
      (c, requestId) =>
        c.quota.checkCommandQuota({ userId: 'killed-user', commandType: COMMAND_TYPE, requestId }),
    );
    expect(burst.first.size).toBeGreaterThanOrEqual(KILL_CALLS / 3);
    expect(burst.first.size + burst.failed).toBe(KILL_CALLS);
    expect(burst.decidedUnanswered).toBeGreaterThan(0);
    expect(burst.retried.filter((x) => x.degraded)).toEqual([]);
    // The same answer, down to the reservation an admitted command holds.
    const same = (x: CheckCommandQuotaResponse) =>
      JSON.stringify([x.allowed, x.reason, x.reservationId, x.periods.map((p) => p.used)]);
    const differs = burst.retried.filter((x, i) => {
      const f = burst.first.get(`quota-kill-${i}`);
      return f !== undefined && same(f) !== same(x);
    });
    expect(differs).toEqual([]);
    const admitted = burst.retried.filter((x) => x.allowed).map((x) => x.reservationId);
    expect(new Set(admitted).size).toBe(KILL_LIMIT);
    expect(await storedUsage('killed-user')).toEqual({
      used: KILL_LIMIT,
      reservations: admitted.sort(),
    });
  });
});
