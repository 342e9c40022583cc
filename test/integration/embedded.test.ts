import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { connect, RateLimitRule, Scope } from '../../clients/typescript/src/index.js';
import { CheckLimitRequest } from '../../clients/typescript/src/gen/quota/v1/quota_service.js';
import { startApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { silentLogger } from '../../src/log.js';

let dir: string | undefined;

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the embedded default', () => {
  it('runs without DATABASE_URL, migrates at start, and keeps rules across a restart', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'quota-embedded-'));
    const config = loadConfig({
      QUOTA_DATA_DIR: dir,
      QUOTA_HOST: '127.0.0.1',
      QUOTA_PORT: '0',
      QUOTA_METRICS_PORT: '0',
    });
    const first = await startApp(config, silentLogger());
    const c1 = connect(`127.0.0.1:${first.port}`);
    try {
      // The seeded defaults are there on a new installation.
      const seeded = (
        await c1.admin.listRateLimitRules({ scope: Scope.SCOPE_UNSPECIFIED })
      ).rules.map((r) => r.name);
      expect(seeded).toEqual(
        expect.arrayContaining(['ip-per-minute', 'user-per-minute', 'api-key-per-day']),
      );
      await c1.admin.upsertRateLimitRule({
        rule: RateLimitRule.fromPartial({
          name: 'kept',
          scope: Scope.SCOPE_USER,
          match: 'u1',
          limit: 3,
          window: { seconds: 10, nanos: 0 },
        }),
      });
      expect(
        (await c1.quota.checkLimit(CheckLimitRequest.fromPartial({ userId: 'u1' }))).limits[0]!
          .remaining,
      ).toBe(2);
    } finally {
      c1.close();
      await first.stop(1000);
    }

    const second = await startApp(config, silentLogger());
    const c2 = connect(`127.0.0.1:${second.port}`);
    try {
      const rules = (await c2.admin.listRateLimitRules({ scope: Scope.SCOPE_USER })).rules;
      expect(rules.find((r) => r.name === 'kept')).toMatchObject({ match: 'u1', limit: 3 });
      // Counters survived as well.
      const again = await c2.quota.checkLimit(CheckLimitRequest.fromPartial({ userId: 'u1' }));
      expect(again.limits[0]!.remaining).toBe(1);
    } finally {
      c2.close();
      await second.stop(1000);
    }
  });
});
