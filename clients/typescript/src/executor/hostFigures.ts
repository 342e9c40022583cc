/**
 * Pure arithmetic of a host's load figures, from node:os readings and the text of Linux's
 * /proc/diskstats and /proc/net/dev (proc(5)); tested on fixed input.
 */

/** Cumulative CPU time of all cores, in milliseconds: all of it, and the idle part. */
export interface CpuTimes {
  readonly total: number;
  readonly idle: number;
}

/** The sum over os.cpus() of their times. */
export function cpuTimes(
  cpus: readonly {
    times: { user: number; nice: number; sys: number; idle: number; irq: number };
  }[],
): CpuTimes {
  let total = 0;
  let idle = 0;
  for (const { times: t } of cpus) {
    total += t.user + t.nice + t.sys + t.idle + t.irq;
    idle += t.idle;
  }
  return { total, idle };
}

/** Busy share of all cores between two readings, in percent (0 without time between them). */
export function busyPercent(before: CpuTimes, now: CpuTimes): number {
  const total = now.total - before.total;
  const idle = now.idle - before.idle;
  return total > 0 ? clampPercent(((total - idle) / total) * 100) : 0;
}

/** Use of a file system as df(1) reports it: used / (used + available to users), in percent. */
export function diskUsedPercent(fs: { blocks: number; bfree: number; bavail: number }): number {
  const used = fs.blocks - fs.bfree;
  return used + fs.bavail > 0 ? clampPercent((used / (used + fs.bavail)) * 100) : 0;
}

/**
 * Bytes read and written since boot by the named devices, from /proc/diskstats (whose sectors
 * are 512 bytes whatever the device's own sector size).
 */
export function diskBytes(
  diskstats: string,
  devices: ReadonlySet<string>,
): { read: number; written: number } {
  let read = 0;
  let written = 0;
  for (const line of diskstats.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || !devices.has(f[2]!)) continue;
    read += (Number(f[5]) || 0) * 512;
    written += (Number(f[9]) || 0) * 512;
  }
  return { read, written };
}

/** Bytes received and sent since boot by every interface but loopback, from /proc/net/dev. */
export function networkBytes(netDev: string): { rx: number; tx: number } {
  let rx = 0;
  let tx = 0;
  for (const line of netDev.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    // Loopback is traffic of this host with itself.
    if (line.slice(0, colon).trim().startsWith('lo')) continue;
    const f = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/);
    rx += Number(f[0]) || 0;
    tx += Number(f[8]) || 0;
  }
  return { rx, tx };
}

/** A counter's growth per second; 0 without a previous reading, time, or for a counter reset. */
export function perSecond(now: number, before: number | undefined, seconds: number): number {
  return before === undefined || seconds <= 0 ? 0 : Math.max(0, (now - before) / seconds);
}

/** Within [0, 100], and 0 for what is not a number, as ReportLoad accepts. */
export function clampPercent(v: number): number {
  return Number.isFinite(v) ? Math.min(100, Math.max(0, v)) : 0;
}
