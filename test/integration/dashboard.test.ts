import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RateLimitRule, Scope } from '@quota-authority/client';
import { GetDashboardRequest } from '../../clients/typescript/src/gen/quota/v1/admin_service.js';
import {
  CheckCommandQuotaRequest,
  CheckLimitRequest,
} from '../../clients/typescript/src/gen/quota/v1/quota_service.js';
import { HealthState } from '../../clients/typescript/src/gen/quota/v1/admin_service.js';
import { expectRefused } from '../support/expectRefused.js';
import { report } from '../support/loadStreams.js';
import { RawClient } from '../support/rawClient.js';
import { flushBuffers } from '../support/flushBuffers.js';
import { rowCounter } from '../support/rowCounts.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';
import { startTestServer, type TestServer } from '../support/testServer.js';
import { TEST_ADMIN_TOKEN } from '../support/tokens.js';

// GetDashboard over gRPC against a real server: what the other methods wrote shows up in the
// one answer (host health, quota usage, violators, statistics), counted exactly.

let db: TestDatabase;
let server: TestServer;

beforeAll(async () => {
  db = await createTestDatabase();
  // The replica samples its own load once, at start: later samples would add rows between
  // the counts of the refusal test.
  server = await startTestServer(db.url, { QUOTA_LOAD_INTERVAL_MS: '600000' });
});

afterAll(async () => {
  await server?.stop();
  await db?.drop();
});

describe('GetDashboard', () => {
  it('shows host health, quota usage, top users, violators and statistics in one answer', async () => {
    const { quota, admin } = server.client;
    await quota.reportLoad(report({ host: 'dash-host', cpuPercent: 85 }));
    await admin.upsertCommandQuotaRule({
      rule: {
        userId: '*',
        commandType: 'dash-cmd',
        daily: 100,
        cpuEstimatePercent: 0,
        memoryEstimateBytes: 0,
      },
    });
    const command = (userId: string) =>
      quota.checkCommandQuota(
        CheckCommandQuotaRequest.fromPartial({ userId, commandType: 'dash-cmd' }),
      );
    for (let i = 0; i < 3; i++) expect((await command('dash-u1')).allowed).toBe(true);
    expect((await command('dash-u2')).allowed).toBe(true);

    await admin.upsertRateLimitRule({
      rule: RateLimitRule.fromPartial({
        name: 'dash-user',
        scope: Scope.SCOPE_USER,
        match: 'dash-violator',
        limit: 2,
        window: { seconds: 3600, nanos: 0 },
      }),
    });
    const answers = [];
    for (let i = 0; i < 7; i++) {
      answers.push(
        await quota.checkLimit(CheckLimitRequest.fromPartial({ userId: 'dash-violator' })),
      );
    }
    expect(answers.map((a) => a.allowed)).toEqual([true, true, false, false, false, false, false]);
    await flushBuffers(server.client);

    const d = await admin.getDashboard(GetDashboardRequest.fromPartial({}));
    expect(d.databaseAvailable).toBe(true);
    expect(Math.abs(d.at!.getTime() - Date.now())).toBeLessThan(60_000);
    const host = d.hosts.find((h) => h.host === 'dash-host');
    expect(host?.state).toBe(HealthState.HEALTH_STATE_WARNING);
    expect(host?.throttleFactor).toBe(0.6);
    expect(d.quotaUsage.find((u) => u.commandType === 'dash-cmd')).toEqual({
      commandType: 'dash-cmd',
      usedToday: 4,
      usedThisWeek: 4,
      usedThisMonth: 4,
      usersToday: 2,
    });
    expect(d.topUsers.filter((u) => u.commandType === 'dash-cmd')).toEqual([
      { userId: 'dash-u1', commandType: 'dash-cmd', usedToday: 3 },
      { userId: 'dash-u2', commandType: 'dash-cmd', usedToday: 1 },
    ]);
    expect(d.violations).toBe(5);
    expect(d.topViolators).toContainEqual({ scope: 'user', key: 'dash-violator', count: 5 });
    const stats = d.stats.find((s) => s.kind === 'rule' && s.name === 'dash-user');
    expect(stats).toMatchObject({ allowed: 2, denied: 5, shadowDenied: 0, degraded: 0 });
    const commands = d.stats.find((s) => s.kind === 'command' && s.name === 'dash-cmd');
    expect(commands).toMatchObject({ allowed: 4, denied: 0 });
  });

  it('refuses hours outside 1-720 with INVALID_ARGUMENT naming hours, writing nothing', async () => {
    const raw = new RawClient(server.address, TEST_ADMIN_TOKEN);
    try {
      const counts = await rowCounter(db, () => flushBuffers(server.client));
      const body = Buffer.from(GetDashboardRequest.encode({ hours: 721 }).finish());
      await expectRefused(raw, counts, '/quota.v1.AdminService/GetDashboard', body, 'hours');
    } finally {
      raw.close();
    }
    const d = await server.client.admin.getDashboard({ hours: 720 });
    expect(d.databaseAvailable).toBe(true);
  });
});
