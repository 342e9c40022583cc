/**
 * Parsers of the Linux files LinuxLoadSampler reads (proc(5), statfs(2)). Pure, so that their
 * edge cases are tested on fixed text.
 */

/** Cumulative CPU time of all cores, in clock ticks: all of it, and the idle part. */
export interface CpuTimes {
  readonly total: number;
  readonly idle: number;
}

/** The aggregate `cpu` line of /proc/stat. Guest time is already inside user time. */
export function cpuTimes(procStat: string): CpuTimes {
  const line = procStat.split('\n').find((l) => l.startsWith('cpu '));
  if (!line) throw new Error('/proc/stat has no cpu line');
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line
    .trim()
    .split(/\s+/)
    .slice(1, 9)
    .map((v) => Number(v) || 0);
  const idleAll = (idle ?? 0) + (iowait ?? 0);
  return {
    total:
      (user ?? 0) +
      (nice ?? 0) +
      (system ?? 0) +
      idleAll +
      (irq ?? 0) +
      (softirq ?? 0) +
      (steal ?? 0),
    idle: idleAll,
  };
}

/** Busy share of the CPU between two readings, in percent (since boot when `before` is absent). */
export function cpuPercent(now: CpuTimes, before?: CpuTimes): number {
  const total = now.total - (before?.total ?? 0);
  const idle = now.idle - (before?.idle ?? 0);
  return total > 0 ? ((total - idle) / total) * 100 : 0;
}

/** Memory in use (not available to new work, so page cache does not count), in percent. */
export function memoryPercent(meminfo: string): number {
  const kb = (key: string): number | undefined => {
    const m = new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(meminfo);
    return m ? Number(m[1]) : undefined;
  };
  const total = kb('MemTotal') ?? 0;
  // MemAvailable exists since Linux 3.14; before it, free plus reclaimable cache comes close.
  const available =
    kb('MemAvailable') ?? (kb('MemFree') ?? 0) + (kb('Buffers') ?? 0) + (kb('Cached') ?? 0);
  return total > 0 ? ((total - available) / total) * 100 : 0;
}

/** Use of a file system as df(1) reports it: used / (used + available to users), in percent. */
export function diskPercent(fs: { blocks: number; bfree: number; bavail: number }): number {
  const used = fs.blocks - fs.bfree;
  return used + fs.bavail > 0 ? (used / (used + fs.bavail)) * 100 : 0;
}

/**
 * Bytes read and written since boot by the named devices, from /proc/diskstats (whose sectors
 * are always 512 bytes, whatever the device's own sector size).
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
    const iface = line.slice(0, colon).trim();
    // Loopback mostly carries this service's own database traffic.
    if (iface === 'lo' || iface.startsWith('lo')) continue;
    const f = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/);
    rx += Number(f[0]) || 0;
    tx += Number(f[8]) || 0;
  }
  return { rx, tx };
}
