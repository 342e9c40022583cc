import { readFile } from 'node:fs/promises';
import { parseProcStat, parseVmHwm } from './procStat.js';
import { sampleRepeatedly } from './sampleRepeatedly.js';

/** What the samples of a running child saw last. */
export interface ChildSamples {
  /** Its own CPU ticks (and its waited-for children's) at the last sample, if any. */
  readonly lastTicks: number | undefined;
  /** Its VmHWM in bytes at the last sample; 0 before the first. */
  readonly peakBytes: number;
  stop(): void;
}

/**
 * Samples /proc/<pid>/stat and status (Linux) while `exited()` is false: 10 ms after the start,
 * then at doubling intervals up to `maxIntervalMs`.
 */
export function sampleChild(
  pid: number,
  exited: () => boolean,
  maxIntervalMs: number,
): ChildSamples {
  let last: { ticks: number; startTime: number } | undefined;
  let peak = 0;
  const stop = sampleRepeatedly(async () => {
    const [stat, status] = await Promise.all([
      readFile(`/proc/${pid}/stat`, 'utf8'),
      readFile(`/proc/${pid}/status`, 'utf8').catch(() => ''),
    ]);
    // Once reaped, the pid may name another process.
    if (exited()) return;
    const s = parseProcStat(stat);
    if (!s || (last && s.startTime !== last.startTime)) return;
    last = { ticks: s.ticks + s.childTicks, startTime: s.startTime };
    peak = Math.max(peak, parseVmHwm(status) ?? 0);
  }, maxIntervalMs);
  return {
    get lastTicks() {
      return last?.ticks;
    },
    get peakBytes() {
      return peak;
    },
    stop,
  };
}
