import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Scope, type QuotaConnection } from '@quota-authority/client';
import { freePort } from '../src/freePort.js';

/** A server started by a benchmark as a child process. */
export interface BenchServer {
  readonly child: ChildProcess;
  readonly address: string;
  /**
   * An admin token it accepts. The floor server ignores it, but the bench sends it there too,
   * so that both servers receive the same request headers.
   */
  readonly token: string;
  stop(): Promise<void>;
}

const here = path.dirname(fileURLToPath(import.meta.url));

/** Servers started and not stopped yet: a bench that exits (Ctrl-C, an error) stops them. */
const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGTERM');
});

/** The heap flags of `npm start`: the bench's servers run as the service runs. */
const NODE_FLAGS = ['--max-semi-space-size=16', '--no-allocation-site-pretenuring'];

/**
 * Starts `node dist/src/main.js serve` on 127.0.0.1 and a free port, with the heap flags of
 * `npm start`, an embedded PostgreSQL in a temporary folder (or DATABASE_URL when set), a new
 * admin token as QUOTA_ADMIN_TOKEN (authentication on, as the service runs), and `env` on top.
 * `entry` 'no-op' starts the no-op baseline (noopServer.ts) the same way instead.
 */
export async function startServer(
  env: Record<string, string> = {},
  entry: 'service' | 'no-op' = 'service',
): Promise<BenchServer> {
  const port = await freePort();
  const dataDir = await mkdtemp(path.join(tmpdir(), 'quota-bench-'));
  const args =
    entry === 'service'
      ? [path.join(here, '..', 'src', 'main.js'), 'serve']
      : [path.join(here, 'noopServer.js')];
  const token = newToken();
  const server = spawnServer(args, port, token, {
    ...process.env,
    QUOTA_HOST: '127.0.0.1',
    QUOTA_PORT: String(port),
    QUOTA_DATA_DIR: dataDir,
    QUOTA_METRICS_PORT: '0',
    QUOTA_ADMIN_TOKEN: token,
    ...env,
  });
  return {
    ...server,
    async stop() {
      await server.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Starts the floor server (floorServer.ts) on 127.0.0.1 and a free port. */
export async function startFloorServer(): Promise<BenchServer> {
  const port = await freePort();
  return spawnServer(
    [path.join(here, 'floorServer.js'), String(port)],
    port,
    newToken(),
    process.env,
  );
}

/** A token of the form the service makes (32 random bytes). */
function newToken(): string {
  return `qa_${randomBytes(32).toString('base64url')}`;
}

function spawnServer(
  args: string[],
  port: number,
  token: string,
  env: NodeJS.ProcessEnv,
): BenchServer {
  const child = spawn(process.execPath, [...NODE_FLAGS, ...args], {
    env,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  running.add(child);
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      running.delete(child);
      resolve();
    }),
  );
  return {
    child,
    address: `127.0.0.1:${port}`,
    token,
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/**
 * Resolves once the server answers an admin call that reads the database (one that answers
 * from memory could succeed before the database is up), or `probe` when given; gives up after
 * 30 s.
 */
export async function waitServing(
  client: QuotaConnection,
  probe: () => Promise<unknown> = () =>
    client.admin.listRateLimitRules({ scope: Scope.SCOPE_UNSPECIFIED }, { deadlineMs: 1000 }),
): Promise<void> {
  const until = Date.now() + 30_000;
  for (;;) {
    try {
      await probe();
      return;
    } catch (err) {
      if (Date.now() > until) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}
