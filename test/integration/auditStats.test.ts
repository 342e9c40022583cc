import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Period, typesV1 } from '@quota-authority/client';
import type { DecisionStats } from '../../clients/typescript/src/gen/quota/v1/admin_service.js';
import {
  CheckCommandQuotaRequest,
  CheckLimitRequest,
  type CheckCommandQuotaResponse,
  type CheckLimitResponse,
} from '../../clients/typescript/src/gen/quota/v1/quota_service.js';
import { AuditRecorder } from '../../src/audit/AuditRecorder.js';
import { silentLogger } from '../../src/log.js';
import { StoreUnavailableError } from '../../src/errors.js';
import { Database } from '../../src/store/Database.js';
import { PgAuditStore } from '../../src/store/PgAuditStore.js';
import { commandEvent, denial, limitEvent, outcome } from '../support/auditEvents.js';
import { minuteRule } from '../support/auditCalls.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';
import { startTestServer, type TestServer } from '../support/testServer.js';
import { waitFor } from '../support/waitFor.js';
import { sqlSession } from '../support/sqlSession.js';

// Decision statistics: exact per rule and per command type across two replicas, replays not
// counted, and a flush the database refuses keeps its counts.

type Counts = Pick<DecisionStats, 'allowed' | 'denied' | 'shadowDenied' | 'degraded'>;
const zero = (): Counts => ({ allowed: 0, denied: 0, shadowDenied: 0, degraded: 0 });

/** What the statistics must say of `answers`, computed from what each answer reports. */
function expectedOfLimits(answers: readonly CheckLimitResponse[]): Map<string, Counts> {
  const by = new Map<string, Counts>([['*', zero()]]);
  const of = (name: string) => by.get(name) ?? by.set(name, zero()).get(name)!;
  for (const a of answers) {
    const all = of('*');
    if (a.allowed) all.allowed++;
    else all.denied++;
    if (a.limits.some((l) => l.shadow && l.exceeded)) all.shadowDenied++;
    for (const l of a.limits) {
      const c = of(l.rule);
      if (l.exceeded && l.shadow) c.shadowDenied++;
      if (l.exceeded && !l.shadow) c.denied++;
      if (a.allowed) c.allowed++;
    }
  }
  return by;
}

function expectedOfCommands(
  answers: readonly { type: string; answer: CheckCommandQuotaResponse }[],
): Map<string, Counts> {
  const by = new Map<string, Counts>([['*', zero()]]);
  const of = (name: string) => by.get(name) ?? by.set(name, zero()).get(name)!;
  for (const { type, answer } of answers) {
    for (const c of [of('*'), of(type)]) {
      if (answer.allowed) c.allowed++;
      else c.denied++;
    }
  }
  return by;
}

function totalsOf(totals: readonly DecisionStats[], kind: string): Map<string, Counts> {
  return new Map(
    totals
      .filter((t) => t.kind === kind)
      .map((t) => [
        t.name,
        {
          allowed: t.allowed,
          denied: t.denied,
          shadowDenied: t.shadowDenied,
          degraded: t.degraded,
        },
      ]),
  );
}

describe('decision statistics through two replicas', () => {
  let db: TestDatabase;
  let a: TestServer;
  let b: TestServer;

  beforeAll(async () => {
    db = await createTestDatabase();
    const env = { QUOTA_DB_TIMEOUT_MS: '5000', QUOTA_LOAD_INTERVAL_MS: '600000' };
    [a, b] = await Promise.all([startTestServer(db.url, env), startTestServer(db.url, env)]);
  });

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await db?.drop();
  });

  it('count exactly the allowed, denied and shadow-denied calls per rule and command type', async () => {
    const limitAnswers: CheckLimitResponse[] = [];
    const commandAnswers: { type: string; answer: CheckCommandQuotaResponse }[] = [];
    const check = async (s: TestServer, r: Partial<CheckLimitRequest>) => {
      const answer = await s.client.quota.checkLimit(CheckLimitRequest.fromPartial(r));
      limitAnswers.push(answer);
      return answer;
    };
    const command = async (s: TestServer, userId: string, commandType: string) => {
      const answer = await s.client.quota.checkCommandQuota(
        CheckCommandQuotaRequest.fromPartial({ userId, commandType }),
      );
      commandAnswers.push({ type: commandType, answer });
      return answer;
    };

    await a.client.admin.upsertRateLimitRule({ rule: minuteRule({ name: 'st-a', limit: 3 }) });
    await a.client.admin.upsertRateLimitRule({
      rule: minuteRule({ name: 'st-sh', limit: 2, shadow: true }),
    });
    // Every call is kept, the ones made while a replica still had the old rules included.
    for (const s of [a, b]) {
      await waitFor(
        async () =>
          (await check(s, { userId: `probe-${limitAnswers.length}` })).limits.length === 2,
      );
    }
    for (let i = 0; i < 10; i++) await check(i % 2 ? a : b, { userId: 'stat-u' });
    // A retry with the same request_id is the first answer again: counted once.
    const first = await check(a, { userId: 'replayed', requestId: 'st-1' });
    const replay = await b.client.quota.checkLimit(
      CheckLimitRequest.fromPartial({ userId: 'replayed', requestId: 'st-1' }),
    );
    expect(replay).toEqual(first);

    await a.client.admin.upsertCommandQuotaRule({
      rule: typesV1.CommandQuotaRule.fromPartial({
        userId: 'cq-u',
        commandType: 'shell',
        daily: 2,
      }),
    });
    for (const s of [a, b])
      await waitFor(
        async () =>
          (await command(s, 'cq-u', 'shell')).periods.find((p) => p.period === Period.PERIOD_DAILY)
            ?.limit === 2,
      );
    for (let i = 0; i < 5; i++) await command(i % 2 ? a : b, 'cq-u', 'shell');
    for (let i = 0; i < 3; i++) await command(a, 'cq-u', 'code');

    const limits = expectedOfLimits(limitAnswers);
    const commands = expectedOfCommands(commandAnswers);
    // The calls above make st-a admit 3 of stat-u's 10 and deny 7; st-sh would have denied
    // the 3rd: what the answers say is what the statistics must say.
    expect(limits.get('st-a')!.denied).toBe(7);
    expect(limits.get('st-sh')!.shadowDenied).toBeGreaterThanOrEqual(1);
    expect(limits.get('*')!.allowed).toBe(limitAnswers.filter((x) => x.allowed).length);
    expect(commands.get('code')).toEqual({ allowed: 3, denied: 0, shadowDenied: 0, degraded: 0 });
    expect(commands.get('shell')!.denied).toBeGreaterThanOrEqual(3);

    const read = () =>
      a.client.admin.getStats({
        since: new Date(Date.now() - 7_200_000),
        until: new Date(Date.now() + 60_000),
        name: '',
      });
    await waitFor(async () => {
      const { totals } = await read();
      return (
        JSON.stringify([...totalsOf(totals, 'rule')].sort()) ===
          JSON.stringify([...limits].sort()) &&
        JSON.stringify([...totalsOf(totals, 'command')].sort()) ===
          JSON.stringify([...commands].sort())
      );
    }, 30_000);
    const report = await read();
    expect(totalsOf(report.totals, 'rule')).toEqual(limits);
    expect(totalsOf(report.totals, 'command')).toEqual(commands);
    expect(report.hours.every((h) => h.hour instanceof Date)).toBe(true);
    const only = await a.client.admin.getStats({
      since: undefined,
      until: undefined,
      name: 'st-a',
    });
    expect(only.totals).toEqual([
      { hour: undefined, kind: 'rule', name: 'st-a', ...limits.get('st-a') },
    ]);

    // Stopping writes what the replicas still counted: nothing more, nothing twice.
    await Promise.all([a.stop(), b.stop()]);
    const stored = await db.query<{
      kind: string;
      name: string;
      allowed: string;
      denied: string;
      shadow_denied: string;
      degraded: string;
    }>(
      `SELECT kind, name, sum(allowed)::text AS allowed, sum(denied)::text AS denied,
              sum(shadow_denied)::text AS shadow_denied, sum(degraded)::text AS degraded
         FROM decision_stats GROUP BY kind, name`,
    );
    for (const r of stored.rows) {
      const want = (r.kind === 'rule' ? limits : commands).get(r.name);
      expect([
        r.kind,
        r.name,
        ...[r.allowed, r.denied, r.shadow_denied, r.degraded].map(Number),
      ]).toEqual([r.kind, r.name, want?.allowed, want?.denied, want?.shadowDenied, want?.degraded]);
    }
    expect(stored.rows).toHaveLength(limits.size + commands.size);
    [a, b] = [undefined as never, undefined as never];
  });
});

describe('a statistics or violations write the database refuses', () => {
  let db: TestDatabase;
  let database: Database;

  beforeAll(async () => {
    db = await createTestDatabase();
    database = new Database({ url: db.url, timeoutMs: 1000, poolSize: 2, logger: silentLogger() });
  });

  afterAll(async () => {
    await database?.close();
    await db?.drop();
  });

  it('keeps its counts and writes them, with later ones, on the next flush', async () => {
    const recorder = new AuditRecorder(new PgAuditStore(database), {
      enabled: true,
      bufferSize: 100,
      windowMs: 60_000,
      attackIdentities: 20,
    });
    const at = Date.UTC(2026, 0, 1, 10, 30);
    for (let i = 0; i < 7; i++) recorder.decided(denial('lk', { at }));
    for (let i = 0; i < 4; i++)
      recorder.decided(limitEvent({ rules: [outcome({ rule: 'lk' })], at }));
    recorder.decided(commandEvent({ at }));

    const locker = await sqlSession(db.url);
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE decision_stats, violations IN SHARE MODE');
    await expect(recorder.flushStats()).rejects.toMatchObject({ code: '55P03' });
    await expect(recorder.flushViolations()).rejects.toMatchObject({ code: '55P03' });
    await locker.query('COMMIT');
    await locker.end();

    recorder.decided(denial('lk', { at }));
    await recorder.flushStats();
    await recorder.flushViolations();
    const stats = await db.query<{ kind: string; name: string; allowed: string; denied: string }>(
      `SELECT kind, name, allowed::text, denied::text FROM decision_stats
        WHERE hour = '2026-01-01T10:00:00Z' ORDER BY kind, name`,
    );
    expect(stats.rows.map((r) => [r.kind, r.name, Number(r.allowed), Number(r.denied)])).toEqual([
      ['command', '*', 1, 0],
      ['command', 'shell', 1, 0],
      ['rule', '*', 4, 8],
      ['rule', 'lk', 4, 8],
    ]);
    const violations = await db.query<{ n: string }>(
      `SELECT sum(count)::text AS n FROM violations WHERE rule = 'lk'`,
    );
    expect(Number(violations.rows[0]!.n)).toBe(8);
    // Written once: another flush adds nothing.
    await recorder.flushStats();
    await recorder.flushViolations();
    const again = await db.query<{ n: string }>(
      `SELECT sum(denied)::text AS n FROM decision_stats WHERE name = 'lk'`,
    );
    expect(Number(again.rows[0]!.n)).toBe(8);
  });
});

describe('a write the service gives up on that the database then commits', () => {
  let db: TestDatabase;
  let database: Database;
  const BOUND_MS = 1000;

  beforeAll(async () => {
    db = await createTestDatabase();
    // One connection, and a bound on writes (slowTimeoutMs) that covers the wait for it.
    database = new Database({
      url: db.url,
      timeoutMs: 250,
      slowTimeoutMs: BOUND_MS,
      poolSize: 1,
      logger: silentLogger(),
      probeIntervalMs: 50,
    });
  });

  afterAll(async () => {
    await database?.close();
    await db?.drop();
  });

  /**
   * Runs `flush` while the pool's only connection is busy until shortly before the flush's
   * bound and `table` is locked: the write gets its connection, waits for the lock, and the
   * service gives up on it (the flush fails); the lock is then let go, well within the write's
   * lock_timeout, and the write commits on the server all the same.
   */
  async function failedButCommitted(table: string, flush: () => Promise<void>): Promise<void> {
    const locker = await sqlSession(db.url);
    try {
      await locker.query('BEGIN');
      await locker.query(`LOCK TABLE ${table} IN SHARE MODE`);
      const busy = database.withConnection((c) =>
        c.query(`SELECT pg_sleep(${(BOUND_MS - 100) / 1000})`),
      );
      await expect(flush()).rejects.toBeInstanceOf(StoreUnavailableError);
      await locker.query('COMMIT');
      await busy;
    } finally {
      await locker.end();
    }
    await waitFor(() => database.available, 10_000);
  }

  it('sends the batch again under its id, and the database counts it once', async () => {
    const recorder = new AuditRecorder(new PgAuditStore(database), {
      enabled: true,
      bufferSize: 100,
      windowMs: 60_000,
      attackIdentities: 20,
    });
    const denied = async () =>
      Number(
        (
          await db.query<{ n: string | null }>(
            `SELECT sum(denied)::text AS n FROM decision_stats WHERE kind = 'rule' AND name = 'dw'`,
          )
        ).rows[0]!.n ?? 0,
      );
    const violations = async () =>
      Number(
        (
          await db.query<{ n: string | null }>(
            `SELECT sum(count)::text AS n FROM violations WHERE rule = 'dw'`,
          )
        ).rows[0]!.n ?? 0,
      );
    // The clock is read now, not in the flushes: they do nothing but their write.
    await recorder.syncClock();
    for (let i = 0; i < 7; i++) recorder.decided(denial('dw', { at: Date.now() }));

    await failedButCommitted('decision_stats', () => recorder.flushStats());
    // Reported failed, committed all the same.
    await waitFor(async () => (await denied()) === 7, 10_000);
    await failedButCommitted('violations', () => recorder.flushViolations());
    await waitFor(async () => (await violations()) === 7, 10_000);
    expect([recorder.pendingStats.size, recorder.pendingViolations.size]).toEqual([1, 1]);

    // Denials meanwhile go to the live buffer; the next flushes send the kept batches first
    // (skipped: their ids are written), then those.
    for (let i = 0; i < 3; i++) recorder.decided(denial('dw', { at: Date.now() }));
    await recorder.flushStats();
    await recorder.flushViolations();
    expect(await denied()).toBe(10);
    expect(await violations()).toBe(10);
    expect(recorder.pendingStats.alreadyWritten).toBe(1);
    expect(recorder.pendingViolations.alreadyWritten).toBe(1);
    const batches = await db.query<{ n: string }>(`SELECT count(*)::text AS n FROM audit_batches`);
    expect(Number(batches.rows[0]!.n)).toBe(4);
  });
});
