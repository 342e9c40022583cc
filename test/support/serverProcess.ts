import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { connect, Scope, type QuotaConnection } from '@quota-authority/client';
import { freePort } from '../../src/freePort.js';
import { TEST_ADMIN_TOKEN } from './tokens.js';
import { waitFor } from './waitFor.js';

/** The build that `npm ci` makes, as operators run it. */
const serverMain = fileURLToPath(new URL('../../dist/src/main.js', import.meta.url));

/** A server in a process of its own, and a client connected to it. */
export interface ServerProcess {
  readonly child: ChildProcess;
  readonly client: QuotaConnection;
  /** Resolves with the exit status. */
  readonly exited: Promise<number | null>;
}

/**
 * Spawns `node dist/src/main.js serve` on 127.0.0.1:`port` against `databaseUrl`, with the admin
 * token TEST_ADMIN_TOKEN and `env` on top (an empty QUOTA_ADMIN_TOKEN configures none); with
 * `output` 'pipe' its log (stdout) and stderr are piped, else stderr is the test's own and the
 * log goes nowhere. `exited` resolves with its exit status.
 */
export function spawnServerProcess(
  databaseUrl: string,
  port: number,
  env: Record<string, string> = {},
  output: 'inherit' | 'pipe' = 'inherit',
): { child: ChildProcess; exited: Promise<number | null> } {
  expect(existsSync(serverMain), 'dist/ missing: run `npm run build`').toBe(true);
  const child = spawn(process.execPath, [serverMain, 'serve'], {
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      QUOTA_HOST: '127.0.0.1',
      QUOTA_PORT: String(port),
      QUOTA_METRICS_PORT: '0',
      LOG_LEVEL: 'warn',
      QUOTA_ADMIN_TOKEN: TEST_ADMIN_TOKEN,
      ...env,
    },
    stdio: ['ignore', output === 'pipe' ? 'pipe' : 'ignore', output],
  });
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  return { child, exited };
}

/** Kills `child` unless it has ended: what a test started must not outlive the run. */
export function killIfRunning(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

/**
 * Starts a server process on a free port (see spawnServerProcess) and resolves once it answers
 * an admin call.
 */
async function startServerProcess(
  databaseUrl: string,
  env: Record<string, string> = {},
): Promise<ServerProcess> {
  const port = await freePort();
  const { child, exited } = spawnServerProcess(databaseUrl, port, env);
  const client = connect({
    address: `127.0.0.1:${port}`,
    deadlineMs: 10_000,
    token: env['QUOTA_ADMIN_TOKEN'] ?? TEST_ADMIN_TOKEN,
    // One CheckLimit per call, as testServer's client (see there).
    batching: false,
  });
  const started = { child, client, exited };
  try {
    // A server that ends before it answers fails the start at once, with its status.
    await Promise.race([
      waitFor(
        () =>
          client.admin
            .listRateLimitRules({ scope: Scope.SCOPE_UNSPECIFIED }, { deadlineMs: 500 })
            .then(
              () => true,
              () => false,
            ),
        20_000,
      ),
      exited.then((code) => {
        throw new Error(`server process exited with status ${code} before it answered`);
      }),
    ]);
  } catch (err) {
    killServerProcess(started);
    throw err;
  }
  return started;
}

/**
 * Starts one server process per `env`; if any fails, kills those that started, so that none
 * outlives the test run.
 */
export async function startServerProcesses(
  databaseUrl: string,
  envs: Record<string, string>[],
): Promise<ServerProcess[]> {
  const results = await Promise.allSettled(envs.map((env) => startServerProcess(databaseUrl, env)));
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) {
    for (const r of results) if (r.status === 'fulfilled') killServerProcess(r.value);
    throw failed.reason;
  }
  return results.map((r) => (r as PromiseFulfilledResult<ServerProcess>).value);
}

/** Closes the client and kills the process if it still runs. */
export function killServerProcess(p: ServerProcess): void {
  p.client.close();
  killIfRunning(p.child);
}
