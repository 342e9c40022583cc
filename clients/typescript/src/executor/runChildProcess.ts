import { spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:os';
import type { ChildOutcome } from './ChildProcessSpec.js';
import type { CheckedChildSpec } from './checkChildSpec.js';
import { OWN_GROUPS, trackGroup } from './childGroups.js';
import { childExited, childSpawned, markBeforeSpawn } from './childLedger.js';
import type { Executed } from './Executed.js';
import { GroupStopper } from './GroupStopper.js';
import { CLOCK_TICKS_PER_SECOND } from './procStat.js';
import type { CpuSource } from './RunResult.js';
import { sampleChild, type ChildSamples } from './sampleChild.js';
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

/** How long output may still arrive after the exit (from descendants holding the pipes). */
const OUTPUT_GRACE_MS = 1000;

/**
 * Spawns `spec` (no shell) as the leader of its own process group (see childGroups), waits for
 * its end and measures it from /proc (Linux): CPU time as the growth of this process's children
 * CPU time when only this child ended meanwhile (exact, see childLedger), else its own at the
 * last sample; peak memory as its VmHWM at the last sample. A timeout or an abort stops the whole
 * group (GroupStopper). Never throws: a spawn failure is `not_started` with exit code 127 (not
 * found) or 126 (cannot be run), as a shell says; anything failing once it runs kills its group
 * with SIGKILL, and the child is still reaped and measured, `failed` with that error.
 */
export async function runChildProcess(
  spec: CheckedChildSpec,
  options: ChildRunOptions,
): Promise<Executed<ChildOutcome>> {
  const capture = spec.output === 'capture';
  const stdio = capture ? 'pipe' : spec.output;
  const out = new TailBuffer(spec.maxOutputBytes);
  const err = new TailBuffer(spec.maxOutputBytes);
  const mark = markBeforeSpawn();
  const startedAt = new Date();
  const t0 = performance.now();
  let child: ChildProcess;
  try {
    child = spawn(spec.command, [...spec.args], {
      cwd: spec.cwd,
      env: spec.env,
      shell: false,
      windowsHide: true,
      // Its own process group: stopping it reaches its descendants (see childGroups).
      detached: OWN_GROUPS,
      stdio: [spec.input === undefined ? 'ignore' : 'pipe', stdio, stdio],
    });
  } catch (error) {
    return notStarted(error, startedAt);
  }
  const pid = child.pid;
  if (pid === undefined)
    return notStarted(await new Promise((r) => child.once('error', r)), startedAt);
  childSpawned(pid);
  trackGroup(pid);
  const group = new GroupStopper(pid, spec.killSignal, spec.killGraceMs);

  let exited = false;
  const ended = new Promise<Exit>((resolve) =>
    child.once('exit', (code, sig) => {
      // Right after Node reaped it: before anything else can reap another child.
      exited = true;
      resolve({ code, sig, at: performance.now(), alone: childExited(pid, mark) });
      // No stop after this: the pid no longer names the child.
      group.exited();
    }),
  );
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  // Errors of the pipes: the 'exit' event still comes.
  child.on('error', () => undefined);

  const { signal, timeoutMs } = options;
  const onAbort = (): void => group.stop('abort');
  let timeout: NodeJS.Timeout | undefined;
  let samples: ChildSamples | undefined;
  let failure: { readonly error: unknown } | undefined;
  try {
    if (capture) {
      child.stdout?.on('data', (c: Buffer) => out.push(c));
      child.stderr?.on('data', (c: Buffer) => err.push(c));
    }
    if (spec.input !== undefined) {
      // EPIPE when it exits without reading it all: its business.
      child.stdin?.on('error', () => undefined);
      child.stdin?.end(spec.input);
    }
    samples = sampleChild(pid, () => exited, options.sampleIntervalMs);
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
    if (timeoutMs !== undefined) timeout = setTimeout(() => group.stop('timeout'), timeoutMs);
  } catch (error) {
    // Whatever failed, the child must not run on unsupervised: its group is killed now, and it
    // is still reaped and measured below, then recorded as failed with this error.
    failure = { error };
    group.kill();
  }

  const { code, sig, at, alone } = await ended;
  const durationMs = at - t0;
  samples?.stop();
  clearTimeout(timeout);
  signal?.removeEventListener('abort', onAbort);
  if (capture) await drain(child, closed);

  const lastTicks = samples?.lastTicks;
  let cpuTicks = 0;
  let cpuSource: CpuSource = process.platform === 'linux' ? 'sampled' : 'unavailable';
  if (alone !== undefined && alone >= (lastTicks ?? 0)) {
    cpuTicks = alone;
    cpuSource = 'children';
  } else if (lastTicks !== undefined) cpuTicks = lastTicks;
  const cpuTimeMs = (cpuTicks * 1000) / CLOCK_TICKS_PER_SECOND;
  const exitCode = code ?? 128 + (sig ? (constants.signals[sig] ?? 0) : 0);
  const stoppedFor = group.stoppedFor;
  return {
    status:
      stoppedFor === 'timeout' && !failure
        ? 'timeout'
        : failure || stoppedFor === 'abort' || exitCode !== 0
          ? 'failed'
          : 'completed',
    exitCode,
    measurements: {
      startedAt,
      durationMs,
      cpuTimeMs,
      cpuPercent: durationMs > 0 ? (cpuTimeMs / durationMs) * 100 : 0,
      memoryBytes: samples?.peakBytes ?? 0,
      cpuSource,
    },
    outcome: failure
      ? { ok: false, error: failure.error }
      : stoppedFor === 'abort'
        ? { ok: false, error: signal!.reason }
        : {
            ok: true,
            value: {
              exitCode,
              signal: sig,
              stdout: out.toString(),
              stderr: err.toString(),
              truncated: out.truncated || err.truncated,
            },
          },
  };
}

/** Descendants may hold the pipes open long after the child ended: wait a little, then stop. */
async function drain(child: ChildProcess, closed: Promise<void>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([closed, new Promise((r) => (timer = setTimeout(r, OUTPUT_GRACE_MS)))]);
  clearTimeout(timer);
  child.stdout?.destroy();
  child.stderr?.destroy();
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
