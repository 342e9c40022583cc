import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { constants } from 'node:os';
import type { ChildOutcome, ChildProcessSpec } from './ChildProcessSpec.js';
import { childExited, childSpawned, markBeforeSpawn } from './childLedger.js';
import type { Executed } from './Executed.js';
import { CLOCK_TICKS_PER_SECOND, parseProcStat, parseVmHwm } from './procStat.js';
import type { CpuSource } from './RunResult.js';
import { sampleRepeatedly } from './sampleRepeatedly.js';
import { TailBuffer } from './TailBuffer.js';

export interface ChildRunOptions {
  /** Ends the run early (RunOptions.signal); undefined: never. */
  readonly signal: AbortSignal | undefined;
  /** Ends the run as `timeout` after this long (RunOptions.timeoutMs); undefined: never. */
  readonly timeoutMs: number | undefined;
  /** Longest gap between two samples (ExecutorOptions.sampleIntervalMs). */
  readonly sampleIntervalMs: number;
}

interface Exit {
  readonly code: number | null;
  readonly sig: NodeJS.Signals | null;
  /** performance.now() at the 'exit' event. */
  readonly at: number;
  /** The child's exact CPU ticks, when childLedger could tell them (see there). */
  readonly alone: number | undefined;
}

const MIB = 1024 * 1024;
/** How long output may still arrive after the exit (from descendants holding the pipes). */
const OUTPUT_GRACE_MS = 1000;

/** Throws a TypeError for a spec that cannot be spawned, before any quota is asked for. */
export function assertChildSpec(spec: ChildProcessSpec): void {
  if (typeof spec?.command !== 'string' || spec.command === '')
    throw new TypeError('run: a child process needs a non-empty `command`');
  if (spec.args !== undefined && !(Array.isArray(spec.args) && spec.args.every(isString)))
    throw new TypeError('run: `args` must be an array of strings');
}

const isString = (v: unknown): v is string => typeof v === 'string';

/**
 * Spawns `spec` (no shell), waits for its end and measures it from /proc (Linux): CPU time as
 * the growth of this process's children CPU time when only this child ended meanwhile (exact,
 * see childLedger), else its own at the last sample; peak memory as its VmHWM at the last
 * sample. Samples come 10 ms after the start, then at doubling intervals up to
 * `sampleIntervalMs`. Never throws: a spawn failure is `not_started` with exit code 127 (not
 * found) or 126 (cannot be run), as a shell says.
 */
export async function runChildProcess(
  spec: ChildProcessSpec,
  options: ChildRunOptions,
): Promise<Executed<ChildOutcome>> {
  const output = spec.output ?? 'capture';
  const capture = output === 'capture';
  const stdio = output === 'capture' ? 'pipe' : output;
  const out = new TailBuffer(spec.maxOutputBytes ?? MIB);
  const err = new TailBuffer(spec.maxOutputBytes ?? MIB);
  const mark = markBeforeSpawn();
  const startedAt = new Date();
  const t0 = performance.now();
  let child: ChildProcess;
  try {
    child = spawn(spec.command, [...(spec.args ?? [])], {
      cwd: spec.cwd,
      env: spec.env,
      shell: false,
      windowsHide: true,
      stdio: [spec.input === undefined ? 'ignore' : 'pipe', stdio, stdio],
    });
  } catch (error) {
    return notStarted(error, startedAt);
  }
  const pid = child.pid;
  if (pid === undefined)
    return notStarted(await new Promise((r) => child.once('error', r)), startedAt);
  childSpawned(pid);

  let exited = false;
  const ended = new Promise<Exit>((resolve) =>
    child.once('exit', (code, sig) => {
      // Right after Node reaped it: before anything else can reap another child.
      exited = true;
      resolve({ code, sig, at: performance.now(), alone: childExited(pid, mark) });
    }),
  );
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  // Errors of kill() or of the pipes: the 'exit' event still comes.
  child.on('error', () => undefined);
  if (capture) {
    child.stdout?.on('data', (c: Buffer) => out.push(c));
    child.stderr?.on('data', (c: Buffer) => err.push(c));
  }
  if (spec.input !== undefined) {
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(spec.input);
  }

  let last: { ticks: number; startTime: number } | undefined;
  let peak = 0;
  const stopSampling = sampleRepeatedly(async () => {
    const [stat, status] = await Promise.all([
      readFile(`/proc/${pid}/stat`, 'utf8'),
      readFile(`/proc/${pid}/status`, 'utf8').catch(() => ''),
    ]);
    // Once reaped, the pid may name another process.
    if (exited) return;
    const s = parseProcStat(stat);
    if (!s || (last && s.startTime !== last.startTime)) return;
    last = { ticks: s.ticks + s.childTicks, startTime: s.startTime };
    peak = Math.max(peak, parseVmHwm(status) ?? 0);
  }, options.sampleIntervalMs);

  let stoppedFor: 'timeout' | 'abort' | undefined;
  let graceTimer: NodeJS.Timeout | undefined;
  const stop = (why: 'timeout' | 'abort'): void => {
    if (stoppedFor || exited) return;
    stoppedFor = why;
    child.kill(spec.killSignal ?? 'SIGTERM');
    graceTimer = setTimeout(() => child.kill('SIGKILL'), spec.killGraceMs ?? 5000);
  };
  const onAbort = (): void => stop('abort');
  const { signal, timeoutMs } = options;
  if (signal?.aborted) onAbort();
  else signal?.addEventListener('abort', onAbort, { once: true });
  const timeout =
    timeoutMs === undefined ? undefined : setTimeout(() => stop('timeout'), timeoutMs);

  const { code, sig, at, alone } = await ended;
  const durationMs = at - t0;
  stopSampling();
  clearTimeout(timeout);
  clearTimeout(graceTimer);
  signal?.removeEventListener('abort', onAbort);
  if (capture) {
    // Descendants may hold the pipes open long after the child ended: wait a little, then stop.
    await Promise.race([closed, new Promise((r) => setTimeout(r, OUTPUT_GRACE_MS).unref())]);
    child.stdout?.destroy();
    child.stderr?.destroy();
  }

  let cpuTicks = 0;
  let cpuSource: CpuSource = process.platform === 'linux' ? 'sampled' : 'unavailable';
  if (alone !== undefined && alone >= (last?.ticks ?? 0)) {
    cpuTicks = alone;
    cpuSource = 'children';
  } else if (last) cpuTicks = last.ticks;
  const cpuTimeMs = (cpuTicks * 1000) / CLOCK_TICKS_PER_SECOND;
  const exitCode = code ?? 128 + (sig ? (constants.signals[sig] ?? 0) : 0);
  const value: ChildOutcome = {
    exitCode,
    signal: sig,
    stdout: out.toString(),
    stderr: err.toString(),
    truncated: out.truncated || err.truncated,
  };
  return {
    status:
      stoppedFor === 'timeout'
        ? 'timeout'
        : stoppedFor === 'abort' || exitCode !== 0
          ? 'failed'
          : 'completed',
    exitCode,
    measurements: {
      startedAt,
      durationMs,
      cpuTimeMs,
      cpuPercent: durationMs > 0 ? (cpuTimeMs / durationMs) * 100 : 0,
      memoryBytes: peak,
      cpuSource,
    },
    outcome: stoppedFor === 'abort' ? { ok: false, error: signal!.reason } : { ok: true, value },
  };
}

function notStarted(error: unknown, startedAt: Date): Executed<ChildOutcome> {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return {
    status: 'not_started',
    exitCode: code === 'ENOENT' ? 127 : 126,
    measurements: {
      startedAt,
      durationMs: 0,
      cpuTimeMs: 0,
      cpuPercent: 0,
      memoryBytes: 0,
      cpuSource: process.platform === 'linux' ? 'sampled' : 'unavailable',
    },
    outcome: { ok: false, error },
  };
}
