/**
 * Parsers of the per-process files of Linux's /proc (proc(5)). Pure, so that their edge cases
 * are tested on fixed text.
 */

/**
 * Clock ticks per second of /proc's CPU times (sysconf(_SC_CLK_TCK)). Node cannot ask for it;
 * the kernel's USER_HZ is 100 on every architecture Linux runs Node on.
 */
export const CLOCK_TICKS_PER_SECOND = 100;

/** The CPU fields of /proc/<pid>/stat, in clock ticks. */
export interface ProcStat {
  /** User and system time of the process itself. */
  readonly ticks: number;
  /** User and system time of its children it has waited for (and theirs, recursively). */
  readonly childTicks: number;
  /** When it started, in ticks after boot: tells a reused pid from the process sampled before. */
  readonly startTime: number;
}

/** /proc/<pid>/stat, or undefined when the text is not one. */
export function parseProcStat(text: string): ProcStat | undefined {
  // The command name (field 2) is in parentheses and may itself hold spaces and parentheses:
  // the fields after it start past the last ')'.
  const end = text.lastIndexOf(')');
  if (end < 0) return undefined;
  const f = text
    .slice(end + 1)
    .trim()
    .split(/\s+/);
  // f[0] is field 3 (state): utime is field 14, stime 15, cutime 16, cstime 17, starttime 22.
  const n = (field: number): number => Number(f[field - 3]);
  const [utime, stime, cutime, cstime, startTime] = [n(14), n(15), n(16), n(17), n(22)];
  if (![utime, stime, cutime, cstime, startTime].every(Number.isFinite)) return undefined;
  return { ticks: utime + stime, childTicks: cutime + cstime, startTime };
}

/**
 * The peak resident set size (VmHWM, the kernel's own high-water mark) of /proc/<pid>/status,
 * in bytes; undefined when absent (a zombie has no memory lines).
 */
export function parseVmHwm(status: string): number | undefined {
  const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(status);
  return m ? Number(m[1]) * 1024 : undefined;
}
