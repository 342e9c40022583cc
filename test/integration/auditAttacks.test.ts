import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Scope, type QuotaConnection } from '@quota-authority/client';
import {
  AttackKind,
  type AttackPattern,
} from '../../clients/typescript/src/gen/quota/v1/admin_service.js';
import { CheckLimitRequest } from '../../clients/typescript/src/gen/quota/v1/quota_service.js';
import { MAX_STAMP_ERROR_MS } from '../../src/audit/AuditRecorder.js';
import { attacks, checkMany, minuteRule, upsertEverywhere } from '../support/auditCalls.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';
import { startTestServer, type TestServer } from '../support/testServer.js';
import { waitFor } from '../support/waitFor.js';

// Attack patterns through real replicas: found by the cluster-wide detection task, blocked on
// every replica through the change feed, and the block ends when its time is up.

const GENEROUS = 45_000;
const BASE = { QUOTA_DB_TIMEOUT_MS: '5000', QUOTA_LOAD_INTERVAL_MS: '600000' };

const check = (client: QuotaConnection, r: Partial<CheckLimitRequest>) =>
  client.quota.checkLimit(CheckLimitRequest.fromPartial(r));

/**
 * Runs task `name` on `s`, through RunTask as an operator would, in a run that starts after
 * this call. A RunTask that finds a run in progress (the schedule's) joins it, and that run may
 * have started before the calls it is meant to see: the run asked for once it has ended starts
 * after them. A cluster-wide task is not run here while another replica runs its turn
 * (ran: false): asked again until it runs here.
 */
async function runAfterNow(s: TestServer, name: string): Promise<void> {
  await s.client.admin.runTask({ name });
  await waitFor(async () => {
    const run = await s.client.admin.runTask({ name });
    expect(run.task?.lastError).toBe('');
    return run.ran;
  }, GENEROUS);
}

/**
 * What the schedule does within seconds, now: every replica writes its violations and
 * sightings, then one replica runs the detection.
 */
async function detectNow(servers: readonly TestServer[]): Promise<void> {
  for (const s of servers) await runAfterNow(s, 'violations-flush');
  await runAfterNow(servers[0]!, 'attack-detection');
}

/** The database's clock now, epoch ms: the clock blocks end by. */
async function databaseNow(db: TestDatabase): Promise<number> {
  const { rows } = await db.query<{ ms: number }>(
    `SELECT (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS ms`,
  );
  return rows[0]!.ms;
}

/** Time left in a Duration, in ms. */
const durationMs = (d: { seconds: number; nanos: number } | undefined) =>
  d === undefined ? 0 : d.seconds * 1000 + d.nanos / 1e6;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** How much sooner than the answers said a block may be seen to end (delays of the test's calls). */
const MARGIN_MS = 1000;

/**
 * Waits until `s` denies `ip` for an attack block; the answer says it has about `blockS` left
 * (more than half: the replica read it when it was set), and calls sent until then, less a
 * margin, are denied too. Times are read from the answers, not assumed.
 */
async function expectBlockedFor(s: TestServer, ip: string, blockS: number): Promise<void> {
  let answer = await check(s.client, { ip, userId: 'u0' });
  let sentAt = 0;
  await waitFor(async () => {
    sentAt = Date.now();
    answer = await check(s.client, { ip, userId: 'u0' });
    return !answer.allowed;
  }, GENEROUS);
  expect(answer.limits[0]).toMatchObject({ rule: 'attack-block', scope: Scope.SCOPE_IP, key: ip });
  const leftMs = durationMs(answer.retryAfter);
  expect(leftMs).toBeGreaterThan(0.5 * blockS * 1000);
  expect(leftMs).toBeLessThanOrEqual(blockS * 1000);
  const until = sentAt + leftMs - MARGIN_MS;
  let calls = 0;
  while (Date.now() < until) {
    const during = await check(s.client, { ip, userId: `u${++calls}` });
    expect(during).toMatchObject({ allowed: false });
    expect(during.limits[0]?.rule).toBe('attack-block');
    await sleep(100);
  }
}

describe('an IP presenting 50 users within a minute', () => {
  let db: TestDatabase;
  let a: TestServer;
  let b: TestServer;
  const BLOCK_S = 6;

  beforeAll(async () => {
    db = await createTestDatabase();
    const env = { ...BASE, QUOTA_BLOCK_S: String(BLOCK_S), QUOTA_ATTACK_IDENTITIES: '20' };
    [a, b] = await Promise.all([startTestServer(db.url, env), startTestServer(db.url, env)]);
  });

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await db?.drop();
  });

  it('is blocked on both replicas for QUOTA_BLOCK_S, admitted after, and blocked again only if it goes on', async () => {
    const ip = '203.0.113.7';
    // Half the users through each replica: the database unions what each saw.
    const seen = await checkMany([a.client, b.client], 50, 8, (i) => ({ ip, userId: `u${i}` }));
    expect(seen).toMatchObject({ allowed: 50, errors: 0 });

    await detectNow([a, b]);
    await Promise.all([a, b].map((s) => expectBlockedFor(s, ip, BLOCK_S)));
    // Another address is not blocked.
    for (const s of [a, b])
      expect((await check(s.client, { ip: '203.0.113.8', userId: 'u0' })).allowed).toBe(true);

    const spread = async () =>
      (await attacks(a.client)).find(
        (x) => x.kind === AttackKind.ATTACK_KIND_IDENTITY_SPREAD && x.key === ip,
      );
    // A replica's sightings may come a flush after the other's: the count follows.
    await waitFor(async () => (await spread())?.count === 50, GENEROUS);
    const flag = await spread();
    expect(flag).toMatchObject({ scope: 'ip', key: ip, count: 50 });
    expect(flag!.blockedUntil).toBeInstanceOf(Date);

    for (const s of [a, b])
      await waitFor(async () => (await check(s.client, { ip, userId: 'u0' })).allowed, GENEROUS);
    // The 50 users are still in the window, but they are what the block was for; a user or two
    // since is no spread: after two more detections both replicas still admit.
    await detectNow([a, b]);
    await detectNow([a, b]);
    for (const s of [a, b])
      expect((await check(s.client, { ip, userId: 'u2' })).allowed).toBe(true);

    // The spread goes on after the block: blocked again, on both, for QUOTA_BLOCK_S. After it by
    // the database's clock, by more than a replica's stamps may be off that clock: a replica
    // stops denying by its own reading of the block (which may end it a little early) and stamps
    // what it sees by its estimate of the database clock, and a sighting stamped before the end
    // is taken for the evidence the block was set for.
    const ended = flag!.blockedUntil!.getTime() + MAX_STAMP_ERROR_MS;
    await waitFor(async () => (await databaseNow(db)) > ended, GENEROUS);
    const more = await checkMany([a.client, b.client], 30, 8, (i) => ({ ip, userId: `w${i}` }));
    expect(more.errors).toBe(0);
    await detectNow([a, b]);
    await Promise.all([a, b].map((s) => expectBlockedFor(s, ip, BLOCK_S)));

    // The block's own denials are recorded, under its rule.
    const blockDenials = () =>
      a.client.admin.getViolations({
        since: new Date(Date.now() - 3_600_000),
        until: new Date(Date.now() + 60_000),
        rule: 'attack-block',
        userId: '',
        ip,
        limit: 0,
      });
    await waitFor(async () => (await blockDenials()).total >= 2, GENEROUS);
  }, 120_000);
});

describe('a key denied more than QUOTA_ATTACK_DENIALS times within the window', () => {
  let db: TestDatabase;
  let s: TestServer;

  beforeAll(async () => {
    db = await createTestDatabase();
    s = await startTestServer(db.url, {
      ...BASE,
      QUOTA_ATTACK_DENIALS: '5',
      QUOTA_BLOCK_S: '600',
    });
  });

  afterAll(async () => {
    await s?.stop();
    await db?.drop();
  });

  it('is flagged and blocked, and the denials of its block do not count towards its flag', async () => {
    await upsertEverywhere([s.client], minuteRule({ name: 'rep-1' }));
    // Five denials are not more than five: not flagged.
    expect(await checkMany([s.client], 6, 1, () => ({ userId: 'hammer' }))).toMatchObject({
      allowed: 1,
      denied: 5,
    });
    await detectNow([s]);
    await detectNow([s]);
    expect(await attacks(s.client)).toEqual([]);

    expect(await checkMany([s.client], 2, 1, () => ({ userId: 'hammer' }))).toMatchObject({
      denied: 2,
    });
    // The two denials may reach the table in two flushes: the flag's count follows.
    let flag: AttackPattern | undefined;
    await waitFor(async () => {
      flag = (await attacks(s.client)).find((x) => x.key === 'hammer');
      return flag?.count === 7;
    }, GENEROUS);
    expect(flag).toMatchObject({ kind: AttackKind.ATTACK_KIND_REPEATED_DENIALS, scope: 'user' });
    expect(flag!.blockedUntil).toBeInstanceOf(Date);
    // Until the replica has read the block, a call is still denied by the rule: that counts.
    let ruleDenials = 7;
    await waitFor(async () => {
      const rule = (await check(s.client, { userId: 'hammer' })).limits[0]?.rule;
      if (rule === 'rep-1') ruleDenials++;
      return rule === 'attack-block';
    }, GENEROUS);
    const rules = new Set<string | undefined>();
    for (let i = 0; i < 20; i++)
      rules.add((await check(s.client, { userId: 'hammer' })).limits[0]?.rule);
    expect([...rules]).toEqual(['attack-block']);
    // Another user is not blocked.
    expect((await check(s.client, { userId: 'nail' })).allowed).toBe(true);

    // Two detections later (each after several flushes), the block's 21 denials are in the
    // table and the flag still counts only the rule's.
    await detectNow([s]);
    await detectNow([s]);
    const again = (await attacks(s.client)).find((x) => x.key === 'hammer');
    expect(again).toMatchObject({ count: ruleDenials });
    expect(again!.lastSeen!.getTime()).toBeGreaterThan(flag!.lastSeen!.getTime());
    const blockRows = await db.query<{ n: string }>(
      `SELECT sum(count)::text AS n FROM violations WHERE rule = 'attack-block' AND key = 'hammer'`,
    );
    expect(Number(blockRows.rows[0]!.n)).toBe(21);
  }, 120_000);
});
