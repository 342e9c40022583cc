import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Scope, type QuotaConnection } from '../../clients/typescript/src/index.js';
import {
  AttackKind,
  type AttackPattern,
} from '../../clients/typescript/src/gen/quota/v1/admin_service.js';
import { CheckLimitRequest } from '../../clients/typescript/src/gen/quota/v1/quota_service.js';
import { checkMany, minuteRule, upsertEverywhere } from '../support/auditCalls.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';
import { startTestServer, type TestServer } from '../support/testServer.js';
import { waitFor } from '../support/waitFor.js';

// Attack patterns through real replicas: found by the cluster-wide detection task, blocked on
// every replica through the change feed, and the block ends when its time is up.

const GENEROUS = 45_000;
const BASE = { QUOTA_DB_TIMEOUT_MS: '5000', QUOTA_LOAD_INTERVAL_MS: '600000' };

async function attacks(client: QuotaConnection): Promise<AttackPattern[]> {
  const until = new Date(Date.now() + 60_000);
  const report = await client.admin.getViolations({
    since: new Date(until.getTime() - 3_600_000),
    until,
    rule: '',
    userId: '',
    ip: '',
    limit: 0,
  });
  return report.attacks;
}

const check = (client: QuotaConnection, r: Partial<CheckLimitRequest>) =>
  client.quota.checkLimit(CheckLimitRequest.fromPartial(r));

/** Runs of the attack detection task over the replicas (one runs it, the others skip). */
const detections = (servers: readonly TestServer[]) =>
  servers
    .flatMap((s) => s.app.jobs())
    .filter((j) => j.name === 'attack-detection')
    .reduce((n, j) => n + j.runs, 0);

describe('an IP presenting 50 users within a minute', () => {
  let db: TestDatabase;
  let a: TestServer;
  let b: TestServer;

  beforeAll(async () => {
    db = await createTestDatabase();
    const env = { ...BASE, QUOTA_BLOCK_S: '5', QUOTA_ATTACK_IDENTITIES: '20' };
    [a, b] = await Promise.all([startTestServer(db.url, env), startTestServer(db.url, env)]);
  });

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await db?.drop();
  });

  it('is flagged, denied on both replicas while blocked, then admitted again', async () => {
    const ip = '203.0.113.7';
    // Half the users through each replica: the database unions what each saw.
    const seen = await checkMany([a.client, b.client], 50, 8, (i) => ({ ip, userId: `u${i}` }));
    expect(seen).toMatchObject({ allowed: 50, errors: 0 });

    const spread = async () =>
      (await attacks(a.client)).find(
        (x) => x.kind === AttackKind.ATTACK_KIND_IDENTITY_SPREAD && x.key === ip,
      );
    await waitFor(async () => (await spread()) !== undefined, GENEROUS);
    for (const s of [a, b]) {
      await waitFor(async () => !(await check(s.client, { ip, userId: 'u0' })).allowed, GENEROUS);
      const answer = await check(s.client, { ip, userId: 'u1' });
      expect(answer).toMatchObject({ allowed: false });
      expect(answer.limits[0]).toMatchObject({
        rule: 'attack-block',
        scope: Scope.SCOPE_IP,
        key: ip,
      });
      // Another address is not blocked.
      expect((await check(s.client, { ip: '203.0.113.8', userId: 'u0' })).allowed).toBe(true);
    }

    // A replica's sightings may come a flush after the other's: the count follows.
    await waitFor(async () => (await spread())?.count === 50, GENEROUS);
    const flag = await spread();
    expect(flag).toMatchObject({ scope: 'ip', key: ip, count: 50 });
    expect(flag!.blockedUntil).toBeInstanceOf(Date);

    for (const s of [a, b])
      await waitFor(async () => (await check(s.client, { ip, userId: 'u0' })).allowed, GENEROUS);
    // The pattern goes on (the sightings are still in the window), but a flag that stayed up
    // is not blocked again: after two more detections both replicas still admit.
    const runs = detections([a, b]);
    await waitFor(() => detections([a, b]) >= runs + 2, GENEROUS);
    for (const s of [a, b])
      expect((await check(s.client, { ip, userId: 'u2' })).allowed).toBe(true);
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
  });
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
    const runs = detections([s]);
    await waitFor(async () => detections([s]) >= runs + 2, GENEROUS);
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
    const after = detections([s]);
    await waitFor(async () => detections([s]) >= after + 2, GENEROUS);
    const again = (await attacks(s.client)).find((x) => x.key === 'hammer');
    expect(again).toMatchObject({ count: ruleDenials });
    expect(again!.lastSeen!.getTime()).toBeGreaterThan(flag!.lastSeen!.getTime());
    const blockRows = await db.query<{ n: string }>(
      `SELECT sum(count)::text AS n FROM violations WHERE rule = 'attack-block' AND key = 'hammer'`,
    );
    expect(Number(blockRows.rows[0]!.n)).toBe(21);
  });
});
