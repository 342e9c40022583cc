import { execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { status } from '@grpc/grpc-js';
import { connect, QuotaCallError } from '@quota-authority/client';
import { freePort } from '../../src/freePort.js';
import { killIfRunning, spawnServerProcess } from '../support/serverProcess.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';
import { TEST_ADMIN_TOKEN } from '../support/tokens.js';
import { waitFor } from '../support/waitFor.js';

/** The first admin token and the token commands, as operators meet them: built processes. */

/** Each test starts servers and several CLI processes, each a Node start on a shared box. */
const PROCESS_TEST_MS = 120_000;

const serverMain = fileURLToPath(new URL('../../dist/src/main.js', import.meta.url));
const TOKEN = /qa_[A-Za-z0-9_-]{43}/;

let db: TestDatabase;
let dataDir: string | undefined;
const children: ChildProcess[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
});

afterAll(async () => {
  for (const c of children) killIfRunning(c);
  await db?.drop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

/** `quota-authority <args>` with `env`; resolves with its status and output. */
function cli(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [serverMain, ...args],
      {
        env: { ...process.env, LOG_LEVEL: 'warn', QUOTA_DB_TIMEOUT_MS: '5000', ...env },
        timeout: 60_000,
      },
      (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** A server process with its log (stdout) and stderr collected. */
function serve(env: Record<string, string>, port: number) {
  // What is printed is the claim, not latency: no call may time out on a busy box.
  const { child, exited } = spawnServerProcess(
    db.url,
    port,
    { QUOTA_DB_TIMEOUT_MS: '5000', ...env },
    'pipe',
  );
  children.push(child);
  const out = { log: '', stderr: '' };
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out.log += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (out.stderr += d));
  return { child, exited, out };
}

/** Resolves once `token` is accepted by the server on `port`. */
async function answers(port: number, token: string): Promise<void> {
  const client = connect({ address: `127.0.0.1:${port}`, token, deadlineMs: 1000 });
  try {
    await waitFor(
      () =>
        client.admin.listTokens({}).then(
          () => true,
          () => false,
        ),
      30_000,
    );
  } finally {
    client.close();
  }
}

describe('npm start on a new embedded database', () => {
  it(
    'prints an admin token once on stderr, never in the log; token commands reach the running server',
    async () => {
      dataDir = await mkdtemp(path.join(tmpdir(), 'quota-auth-embedded-'));
      // As `npm start` runs: no DATABASE_URL, no QUOTA_ADMIN_TOKEN.
      const env = {
        DATABASE_URL: '',
        QUOTA_ADMIN_TOKEN: '',
        QUOTA_DATA_DIR: dataDir,
        LOG_LEVEL: 'info',
      };
      const port = await freePort();
      const first = serve(env, port);
      await waitFor(() => TOKEN.test(first.out.stderr), 60_000);
      const printed = first.out.stderr.match(new RegExp(TOKEN, 'g'))!;
      expect(printed).toHaveLength(1);
      const token = printed[0]!;
      await answers(port, token);

      // While the server holds the embedded database, the CLI reaches it through the server's.
      const listed = await cli(['token', 'list'], env);
      expect(listed.stderr).toBe('');
      expect(listed.code).toBe(0);
      expect(listed.stdout).toContain('"first-start admin"');
      expect(listed.stdout).not.toContain(token);

      first.child.kill('SIGTERM');
      expect(await first.exited).toBe(0);
      expect(first.out.log).toContain('quota-authority listening');
      expect(first.out.log).not.toContain(token);

      const second = serve(env, port);
      await answers(port, token);
      second.child.kill('SIGTERM');
      expect(await second.exited).toBe(0);
      expect(second.out.stderr).not.toMatch(TOKEN);
      expect(second.out.log).not.toContain(token);
    },
    PROCESS_TEST_MS,
  );
});

describe('quota-authority token', () => {
  it(
    'creates, lists and revokes tokens in the database; a running server follows',
    async () => {
      const env = { DATABASE_URL: db.url };
      const port = await freePort();
      const server = serve({}, port);
      await answers(port, TEST_ADMIN_TOKEN);

      const created = await cli(['token', 'create', 'ci runner', '--role', 'client'], env);
      expect(created.code).toBe(0);
      const token = created.stdout.trim();
      expect(token).toMatch(/^qa_[A-Za-z0-9_-]{43}$/);
      expect(created.stderr).toMatch(/"ci runner" \(client\)/);

      const listed = await cli(['token', 'list'], env);
      const row = listed.stdout.split('\n').find((l) => l.includes('"ci runner"'))!;
      expect(row).toMatch(/^\d+ +"ci runner" +client +\d{4}-/);
      expect(listed.stdout).not.toContain(token);
      const id = row.split(' ')[0]!;

      const client = connect({ address: `127.0.0.1:${port}`, token });
      try {
        const call = () =>
          client.quota.getQuotaStatus({ userId: 'u' }).then(
            () => 0,
            (err: unknown) => (err instanceof QuotaCallError ? err.code : -1),
          );
        // The new client token is admitted (GetQuotaStatus needs the client role).
        expect(await call()).toBe(status.OK);
        const revoked = await cli(['token', 'revoke', id], env);
        expect(revoked.code).toBe(0);
        expect(revoked.stdout).toMatch(/revoked at \d{4}-/);
        await waitFor(async () => (await call()) === status.UNAUTHENTICATED);
      } finally {
        client.close();
      }

      const unknown = await cli(['token', 'revoke', '987654'], env);
      expect(unknown.code).toBe(1);
      expect(unknown.stderr).toMatch(/not found/);
      const badRole = await cli(['token', 'create', 'x', '--role', 'root'], env);
      expect(badRole.code).not.toBe(0);

      server.child.kill('SIGTERM');
      expect(await server.exited).toBe(0);
    },
    PROCESS_TEST_MS,
  );
});
