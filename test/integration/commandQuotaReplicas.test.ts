import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Period, typesV1 } from '@quota-authority/client';
import {
  CheckCommandQuotaRequest,
  type CheckCommandQuotaResponse,
} from '../../clients/typescript/src/gen/quota/v1/quota_service.js';
import {
  killServerProcess,
  startServerProcesses,
  type ServerProcess,
} from '../support/serverProcess.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';
import { waitFor } from '../support/waitFor.js';

// Command quotas over two real server processes (the build that `npm ci` makes) on one
// database: one view of every user's usage, and rules that follow admin writes on every replica.

let db: TestDatabase;
let a: ServerProcess;
let b: ServerProcess;

const check = (server: ServerProcess, r: Partial<CheckCommandQuotaRequest>) =>
  server.client.quota.checkCommandQuota(CheckCommandQuotaRequest.fromPartial(r));

const dailyOf = (r: { periods: CheckCommandQuotaResponse['periods'] }) =>
  r.periods.find((p) => p.period === Period.PERIOD_DAILY);

/** A per-user rule written through `server`: `daily` commands of `commandType` a day. */
const upsertDaily = (server: ServerProcess, userId: string, commandType: string, daily: number) =>
  server.client.admin.upsertCommandQuotaRule({
    rule: typesV1.CommandQuotaRule.fromPartial({ userId, commandType, daily }),
  });

/** The daily limit `server` applies to `userId`'s `commandType`, from its own rule cache. */
async function dailyLimitOn(
  server: ServerProcess,
  userId: string,
  commandType: string,
): Promise<number | undefined> {
  const status = await server.client.quota.getQuotaStatus({ userId });
  const command = status.commands.find((c) => c.commandType === commandType);
  return command ? dailyOf(command)?.limit : undefined;
}

beforeAll(async () => {
  db = await createTestDatabase();
  // Atomicity is the claim here, not latency on a box shared with other test files.
  const env = { QUOTA_DB_TIMEOUT_MS: '5000' };
  [a, b] = (await startServerProcesses(db.url, [env, env])) as [ServerProcess, ServerProcess];
});

afterAll(async () => {
  for (const p of [a, b]) if (p) killServerProcess(p);
  await db?.drop();
});

describe('command quotas on two server processes', () => {
  it('admit exactly 20 of 100 concurrent calls for one user with a daily limit of 20', async () => {
    await upsertDaily(a, 'hot-user', 'shell', 20);
    // Both replicas decide by the rule, not by the seeded shell default (500 a day).
    await waitFor(async () =>
      (await Promise.all([a, b].map((s) => dailyLimitOn(s, 'hot-user', 'shell')))).every(
        (limit) => limit === 20,
      ),
    );

    const answers = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        check(i % 2 ? a : b, { userId: 'hot-user', commandType: 'shell' }),
      ),
    );
    expect(answers.filter((x) => x.degraded)).toHaveLength(0);
    const allowed = answers.filter((x) => x.allowed);
    const denied = answers.filter((x) => !x.allowed);
    expect(allowed).toHaveLength(20);
    expect(denied).toHaveLength(80);
    for (const d of denied) {
      expect(d.reason).toBe('QUOTA_EXCEEDED: daily');
      expect(d.reservationId).toBe('');
      expect(dailyOf(d)).toMatchObject({ limit: 20, used: 20, remaining: 0 });
    }
    // Each admitted call has its own reservation, and each count 1..20 was handed out once.
    const ids = allowed.map((x) => x.reservationId);
    expect(new Set(ids).size).toBe(20);
    expect(allowed.map((x) => dailyOf(x)!.used).sort((x, y) => x - y)).toEqual(
      Array.from({ length: 20 }, (_, i) => i + 1),
    );

    const usage = await db.query<{ day_used: string; week_used: string; month_used: string }>(
      `SELECT day_used, week_used, month_used FROM command_usage
        WHERE user_id = 'hot-user' AND command_type = 'shell'`,
    );
    expect(usage.rows.map((r) => [r.day_used, r.week_used, r.month_used].map(Number))).toEqual([
      [20, 20, 20],
    ]);
    const reservations = await db.query<{ id: string }>(
      `SELECT id FROM command_reservations WHERE user_id = 'hot-user' AND command_type = 'shell'`,
    );
    expect(reservations.rows.map((r) => r.id).sort()).toEqual([...ids].sort());
  });

  it('apply a rule written through replica A on replica B within a second', async () => {
    // Before the rule, B decides for this user by the seeded shell default.
    const before = await check(b, { userId: 'fresh-user', commandType: 'shell' });
    expect(dailyOf(before)?.limit).toBe(500);

    await upsertDaily(a, 'fresh-user', 'shell', 7);
    const written = Date.now();
    // The cache, not just the table: B must apply the rule to a decision.
    let limit = dailyOf(before)?.limit;
    while (limit !== 7 && Date.now() - written < 1000) {
      limit = dailyOf(await check(b, { userId: 'fresh-user', commandType: 'shell' }))?.limit;
      if (limit !== 7) await new Promise((r) => setTimeout(r, 20));
    }
    expect(limit).toBe(7);
    expect(Date.now() - written).toBeLessThan(1000);
  });
});
