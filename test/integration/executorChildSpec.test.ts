import { readlinkSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  QuotaExecutor,
  type ChildProcessSpec,
  type ExecutorOptions,
  type RunOptions,
} from '@quota-authority/client';
import { executionRows, reservationCount, usage } from '../support/executorRecords.js';
import { createTestDatabase, type TestDatabase } from '../support/testDatabase.js';
import { startTestServer, type TestServer } from '../support/testServer.js';

// What a child process spec and a run's options may hold: every bad value is refused before
// CheckCommandQuota (nothing reserved, counted or recorded), where it used to fail after the
// spawn (the child left running unsupervised), in a timer (the process crashed) or never (output
// kept without bound, or a timer of "30 days" firing after 1 ms). Then what reaches the child and
// what comes back of it: its input, its output modes, the bound on kept output.

const MAX_TIMER_MS = 2 ** 31 - 1;
const THIRTY_DAYS_MS = 30 * 24 * 3600 * 1000;

let db: TestDatabase;
let server: TestServer;
let executor: QuotaExecutor;

beforeAll(async () => {
  db = await createTestDatabase();
  server = await startTestServer(db.url);
  executor = new QuotaExecutor(server.client, { host: 'exec-spec', reportLoad: false });
});

afterAll(async () => {
  executor?.close();
  await server?.stop();
  await db?.drop();
});

describe('refused before any quota is asked for', () => {
  // Each would have run (and been counted): `sleep 1` with a timeout, where one matters.
  const sleep = { command: 'sleep', args: ['1'] };
  const cases: [
    string,
    ChildProcessSpec | (() => unknown),
    RunOptions,
    ErrorConstructor,
    RegExp,
  ][] = [
    ['input 42', { ...sleep, input: 42 as never }, {}, TypeError, /`input`/],
    [
      'killSignal SIGFOO',
      { ...sleep, killSignal: 'SIGFOO' as never },
      { timeoutMs: 50 },
      TypeError,
      /`killSignal`/,
    ],
    ['maxOutputBytes NaN', { ...sleep, maxOutputBytes: NaN }, {}, RangeError, /`maxOutputBytes`/],
    ['maxOutputBytes -1', { ...sleep, maxOutputBytes: -1 }, {}, RangeError, /`maxOutputBytes`/],
    ["output 'pipe'", { ...sleep, output: 'pipe' as never }, {}, TypeError, /`output`/],
    [
      'killGraceMs 2^31',
      { ...sleep, killGraceMs: 2 ** 31 },
      { timeoutMs: 50 },
      RangeError,
      /killGraceMs/,
    ],
    ['killGraceMs -1', { ...sleep, killGraceMs: -1 }, {}, RangeError, /killGraceMs/],
    ['env of a number', { ...sleep, env: { PORT: 8080 as never } }, {}, TypeError, /`env\.PORT`/],
    ['cwd 5', { ...sleep, cwd: 5 as never }, {}, TypeError, /`cwd`/],
    ['args with a NUL', { command: 'echo', args: ['a\0b'] }, {}, TypeError, /`args\[0\]`/],
    ['no command', { command: '' }, {}, TypeError, /`command`/],
    ['timeoutMs of 30 days', sleep, { timeoutMs: THIRTY_DAYS_MS }, RangeError, /timeoutMs/],
    ['timeoutMs 0', sleep, { timeoutMs: 0 }, RangeError, /timeoutMs/],
    [
      'a function with timeoutMs 2^31',
      () => 'ran',
      { timeoutMs: 2 ** 31 },
      RangeError,
      /timeoutMs/,
    ],
    ['cost 0', sleep, { cost: 0 }, RangeError, /cost/],
    ['cost 1001', sleep, { cost: 1001 }, RangeError, /cost/],
    ['cost 1.5', sleep, { cost: 1.5 }, TypeError, /cost/],
    ['a signal that is not one', sleep, { signal: {} as never }, TypeError, /signal/],
  ];

  it.each(cases)('%s', async (label, task, options, type, message) => {
    const userId = `refused-${label.replace(/\W+/g, '-')}`;
    const err = await executor
      .run(userId, 'shell', task as ChildProcessSpec, options)
      .catch((x: unknown) => x);
    expect(err).toBeInstanceOf(type);
    expect((err as Error).message).toMatch(message);
    // Long enough for a timer of 50 ms to have fired (a bad killSignal crashed the process).
    if (options.timeoutMs !== undefined) await new Promise((r) => setTimeout(r, 100));
    expect(await usage(server.client, userId)).toEqual([0, 0, 0]);
    expect(await reservationCount(db, userId)).toBe(0);
    expect(await executionRows(db, userId)).toEqual([]);
  });

  it('executor intervals above 2^31 − 1 ms are refused when it is made', () => {
    const make = (options: ExecutorOptions) => () =>
      new QuotaExecutor(server.client, { reportLoad: false, ...options }).close();
    expect(make({ sampleIntervalMs: 2 ** 31 })).toThrow(/sampleIntervalMs/);
    expect(make({ loadIntervalMs: THIRTY_DAYS_MS })).toThrow(RangeError);
    expect(make({ sampleIntervalMs: NaN })).toThrow(RangeError);
    expect(make({ loadIntervalMs: MAX_TIMER_MS })).not.toThrow();
  });

  it('timeoutMs of exactly 2^31 − 1 ms is taken, and does not fire', async () => {
    const r = await executor.run('longest-timeout', 'shell', sleepy(50), {
      timeoutMs: MAX_TIMER_MS,
    });
    expect(r).toMatchObject({ status: 'completed', value: { exitCode: 0 } });
  });

  it('a spec is copied when checked: changing it while the quota is asked for changes nothing', async () => {
    const spec: ChildProcessSpec = { command: 'echo', args: ['checked'] };
    const running = executor.run('copied-spec', 'shell', spec);
    spec.args = ['changed'];
    (spec as { input?: unknown }).input = 42;
    expect((await running).value.stdout).toBe('checked\n');
  });
});

describe('what reaches the child and what comes back', () => {
  it('`input` is its standard input, a string or bytes', async () => {
    const text = await executor.run('input', 'shell', { command: 'cat', input: 'hello\nworld' });
    expect(text.value).toMatchObject({ exitCode: 0, stdout: 'hello\nworld' });
    const bytes = await executor.run('input', 'shell', {
      command: 'od',
      args: ['-An', '-tu1'],
      input: new Uint8Array([0, 7, 255]),
    });
    expect(bytes.value.stdout.trim().split(/\s+/)).toEqual(['0', '7', '255']);
  });

  it('maxOutputBytes keeps the last bytes of each stream and says it dropped some', async () => {
    const r = await executor.run('truncated', 'shell', {
      command: process.execPath,
      args: ['-e', "process.stdout.write('a'.repeat(5000) + 'END'); process.stderr.write('short')"],
      maxOutputBytes: 100,
    });
    expect(r.value.stdout).toBe('a'.repeat(97) + 'END');
    expect(r.value.stderr).toBe('short');
    expect(r.value.truncated).toBe(true);
    const whole = await executor.run('truncated', 'shell', { command: 'echo', args: ['x'] });
    expect(whole.value).toMatchObject({ stdout: 'x\n', truncated: false });
  });

  // The shell compares its own standard output and error (fd 1, 2) with what they should be:
  // this process's for 'inherit', /dev/null for 'ignore'. Nothing is written to them.
  const sameFds = (target: string) => ({
    command: 'sh',
    args: [
      '-c',
      '[ "$(readlink /proc/$$/fd/1)" = "$1" ] && [ "$(readlink /proc/$$/fd/2)" = "$2" ]',
      'sh',
      ...(target === '/dev/null' ? [target, target] : [ownFd(1), ownFd(2)]),
    ],
  });

  it("output 'inherit' passes this process's standard output and error", async () => {
    expect(ownFd(1)).not.toBe('/dev/null');
    const r = await executor.run('inherit', 'shell', { ...sameFds('own'), output: 'inherit' });
    expect(r.value).toMatchObject({ exitCode: 0, stdout: '', stderr: '' });
  });

  it("output 'ignore' sends them to /dev/null", async () => {
    const r = await executor.run('ignore', 'shell', { ...sameFds('/dev/null'), output: 'ignore' });
    expect(r.value).toMatchObject({ exitCode: 0, stdout: '', stderr: '' });
    // 'capture' gives it pipes instead: the same check fails.
    const captured = await executor.run('ignore', 'shell', sameFds('/dev/null'));
    expect(captured.value.exitCode).toBe(1);
  });
});

function sleepy(ms: number): ChildProcessSpec {
  return { command: 'sleep', args: [String(ms / 1000)] };
}

function ownFd(fd: number): string {
  return readlinkSync(`/proc/self/fd/${fd}`);
}
