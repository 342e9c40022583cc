import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QuotaExecutor, type ChildOutcome } from '@quota-authority/client';
import { alive } from '../support/alive.js';
import { executionRows, usage } from '../support/executorRecords.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';
import { startTestServer, type TestServer } from '../support/testServer.js';
import { TEST_ADMIN_TOKEN } from '../support/tokens.js';
import { waitFor } from '../support/waitFor.js';

// A child process runs as the leader of its own process group: a timeout, an abort, the SIGKILL
// after killGraceMs, this process's Ctrl-C and its exit reach the child's descendants too, which
// used to survive it, orphaned, holding its output pipes (run() then waited the output grace).
// Every grandchild writes its pid to a file, so that the test can tell it is gone, and kill it
// itself if not.

let db: TestDatabase;
let server: TestServer;
let dir: string;
let executor: QuotaExecutor;
const grandchildren: number[] = [];

/** `sh` that starts a grandchild (`sleep 30`) writing its pid to `file`, then waits for it. */
function shWithGrandchild(file: string, prelude = '') {
  return { command: 'sh', args: ['-c', `${prelude}sleep 30 & echo $! > "$1"; wait`, 'sh', file] };
}

/** The pid written to `file`, once it is there; remembered to be killed after the file. */
async function pidIn(file: string): Promise<number> {
  let pid = 0;
  await waitFor(() => {
    try {
      pid = Number(readFileSync(file, 'utf8'));
    } catch {
      return false;
    }
    return pid > 0;
  });
  grandchildren.push(pid);
  return pid;
}

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db.url);
  dir = mkdtempSync(join(tmpdir(), 'qa-exec-groups-'));
  executor = new QuotaExecutor(server.client, { host: 'exec-groups', reportLoad: false });
});

afterAll(async () => {
  for (const pid of grandchildren) if (alive(pid)) process.kill(pid, 'SIGKILL');
  executor?.close();
  await server?.stop();
  await db?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('stopping a child stops its descendants', () => {
  it('on timeoutMs the grandchild is killed with the child, and run() returns without waiting for the pipes', async () => {
    const file = join(dir, 'timeout.pid');
    const t0 = performance.now();
    const r = await executor.run('group-timeout', 'shell', shWithGrandchild(file), {
      timeoutMs: 200,
    });
    const elapsed = performance.now() - t0;
    const pid = await pidIn(file);
    expect(r.status).toBe('timeout');
    expect(r.value).toMatchObject({ signal: 'SIGTERM', exitCode: 143 });
    // A grandchild holding the pipes made run() wait the 1 s output grace.
    expect(elapsed).toBeLessThan(1000);
    await waitFor(() => !alive(pid), 1000);
    expect(await executionRows(db, 'group-timeout')).toEqual([
      { status: 'timeout', exit_code: 143 },
    ]);
  });

  it('on an abort the group is killed, the run recorded failed (units kept), and run() throws the reason', async () => {
    const file = join(dir, 'abort.pid');
    const controller = new AbortController();
    const reason = new Error('the user went away');
    const running = executor
      .run('group-abort', 'shell', shWithGrandchild(file), { signal: controller.signal })
      .catch((x: unknown) => x);
    const pid = await pidIn(file);
    const t0 = performance.now();
    controller.abort(reason);
    expect(await running).toBe(reason);
    expect(performance.now() - t0).toBeLessThan(800);
    await waitFor(() => !alive(pid), 1000);
    expect(await executionRows(db, 'group-abort')).toEqual([{ status: 'failed', exit_code: 143 }]);
    expect(await usage(server.client, 'group-abort')).toEqual([1, 1, 1]);
  });

  it('a group that ignores killSignal gets SIGKILL after killGraceMs, grandchild included', async () => {
    const file = join(dir, 'trap.pid');
    // Ignored signals stay ignored across fork and exec: the grandchild ignores SIGTERM too.
    const r = await executor.run(
      'group-trap',
      'shell',
      { ...shWithGrandchild(file, "trap '' TERM; "), killGraceMs: 300 },
      { timeoutMs: 200 },
    );
    const pid = await pidIn(file);
    expect(r.status).toBe('timeout');
    expect(r.value).toMatchObject({ signal: 'SIGKILL', exitCode: 137 });
    expect(r.measurements.durationMs).toBeGreaterThanOrEqual(500);
    await waitFor(() => !alive(pid), 1000);
    expect(await executionRows(db, 'group-trap')).toEqual([{ status: 'timeout', exit_code: 137 }]);
  });

  it('a child that ends by itself is reaped as before, its code and output intact', async () => {
    const r = await executor.run('group-normal', 'shell', {
      command: 'sh',
      args: ['-c', 'sleep 0.05; echo done; exit 4'],
    });
    expect(r.value).toMatchObject<Partial<ChildOutcome>>({
      exitCode: 4,
      signal: null,
      stdout: 'done\n',
    });
    expect(r.status).toBe('failed');
  });
});

describe('this process ending', () => {
  const dist = (path: string) =>
    fileURLToPath(new URL(`../../clients/typescript/dist/${path}`, import.meta.url));
  // One command per copy of the package (with 'signals', its CommonJS build beside the ES
  // module one: each passes signals on to its own children), each starting a foreground
  // grandchild (POSIX shells start background ones ignoring SIGINT) that writes its pid.
  const script = `
    import { existsSync, readFileSync } from 'node:fs';
    import { createRequire } from 'node:module';
    const copies = [await import(process.env.QA_ESM)];
    if (process.env.QA_MODE === 'signals')
      copies.push(createRequire(process.env.QA_CJS)(process.env.QA_CJS));
    const files = copies.map((_, i) => process.env.QA_PID_FILE + '.' + i);
    copies.forEach(({ connect, QuotaExecutor }, i) => {
      const connection = connect({ address: process.env.QUOTA_ADDRESS, token: process.env.QUOTA_TOKEN });
      const executor = new QuotaExecutor(connection, { host: 'exec-groups', reportLoad: false });
      executor.run(process.env.QA_USER, 'shell', {
        command: 'sh',
        args: ['-c', 'sh -c \\'echo $$ > "$1"; exec sleep 30\\' sh "$1"; echo unreachable', 'sh', files[i]],
        output: 'ignore',
      }).catch(() => {});
    });
    const ready = (f) => existsSync(f) && readFileSync(f, 'utf8') !== '';
    while (!files.every(ready)) await new Promise((r) => setTimeout(r, 10));
    if (process.env.QA_MODE === 'exit') process.exit(3);
    process.on('SIGTERM', () => console.log('draining'));
    console.log('running');
  `;

  /** The script above in a node process of its own, and its stdout so far. */
  function runScript(mode: 'exit' | 'signals', userId: string, file: string) {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      env: {
        ...process.env,
        QA_ESM: dist('esm/index.js'),
        QA_CJS: dist('cjs/index.js'),
        QA_PID_FILE: file,
        QA_MODE: mode,
        QA_USER: userId,
        QUOTA_ADDRESS: server.address,
        QUOTA_TOKEN: TEST_ADMIN_TOKEN,
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const out = { text: '' };
    child.stdout.on('data', (c: Buffer) => (out.text += c.toString()));
    const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    );
    return { child, out, ended };
  }

  it('process.exit() while a command runs kills its group', async () => {
    const file = join(dir, 'exit.pid');
    const { child, ended } = runScript('exit', 'group-exit', file);
    try {
      const pid = await pidIn(`${file}.0`);
      expect(await ended).toEqual({ code: 3, signal: null });
      await waitFor(() => !alive(pid), 1000);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('SIGTERM handled by the process is its own; an unhandled SIGINT reaches the commands of both copies and still ends the process', async () => {
    const file = join(dir, 'signals.pid');
    const { child, out, ended } = runScript('signals', 'group-signals', file);
    try {
      const pids = [await pidIn(`${file}.0`), await pidIn(`${file}.1`)];
      await waitFor(() => out.text.includes('running'));
      child.kill('SIGTERM');
      await waitFor(() => out.text.includes('draining'));
      // The process's own SIGTERM listener decides; the commands go on.
      await new Promise((r) => setTimeout(r, 100));
      expect(pids.map(alive)).toEqual([true, true]);
      // Nothing listens to SIGINT but the executors: passed on, then the process dies from it.
      child.kill('SIGINT');
      expect(await ended).toEqual({ code: null, signal: 'SIGINT' });
      await waitFor(() => !pids.some(alive), 1000);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
