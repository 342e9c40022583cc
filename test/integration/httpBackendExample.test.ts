import { execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { Scope } from '@quota-authority/client';
import { useTestServer } from '../support/testServer.js';
import { TEST_ADMIN_TOKEN } from '../support/tokens.js';
import { waitFor } from '../support/waitFor.js';

const run = promisify(execFile);
const EXAMPLE = fileURLToPath(
  new URL('../../clients/typescript/examples/http-backend.mjs', import.meta.url),
);

/** The server's address and admin token, as the README passes them. */
const env = () => ({
  QUOTA_ADDRESS: files.server.address,
  QUOTA_TOKEN: TEST_ADMIN_TOKEN,
  PORT: '0',
});

const files = useTestServer();

describe('clients/typescript/examples/http-backend.mjs', () => {
  it('creates its rule, serves, and in --self-test mode shows a 429 and exits 0', async () => {
    // The way the README runs it, with the server's address and admin token from the env.
    const { stdout } = await run(process.execPath, [EXAMPLE, '--self-test'], {
      env: { ...process.env, ...env() },
      timeout: 20_000,
    });
    expect(stdout).toContain('Rule http-backend-example: 5 requests per 10 s per client IP.');
    expect(stdout).toMatch(/curl -i http:\/\/127\.0\.0\.1:\d+\/hello/);
    const statuses = [...stdout.matchAll(/^#\d+ (\d{3})$/gm)].map((m) => Number(m[1]));
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429]);
    expect(stdout).toContain('RateLimit-Policy: "http-backend-example";q=5;w=10');
    expect(stdout).toMatch(/RateLimit: "http-backend-example";r=4;t=\d+/);
    expect(stdout).toMatch(/Retry-After: [1-9]\d*/);
    expect(stdout).toContain('self-test: ok');
    // Its rule counts every IP on the server: it is gone once the example stopped.
    expect(stdout).toContain('Rule http-backend-example deleted.');
    expect(await ruleNames()).not.toContain('http-backend-example');
  });

  it('deletes its rule when stopped with SIGTERM', async () => {
    const child = spawn(process.execPath, [EXAMPLE], {
      env: { ...process.env, ...env(), SELF_TEST: '' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      let stdout = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      await waitFor(() => stdout.includes('Serving http://'), 15_000);
      expect(await ruleNames()).toContain('http-backend-example');
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
      expect(stdout).toContain('Rule http-backend-example deleted.');
      expect(await ruleNames()).not.toContain('http-backend-example');
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });
});

async function ruleNames(): Promise<string[]> {
  const { rules } = await files.server.client.admin.listRateLimitRules({
    scope: Scope.SCOPE_UNSPECIFIED,
  });
  return rules.map((r) => r.name);
}
