import { readFile, writeFile } from 'node:fs/promises';

/** Resident memory of `pid` now (VmRSS) and its peak since the last reset (VmHWM), in bytes. */
export async function residentMemory(
  pid: number,
): Promise<{ now: number; peak: number } | undefined> {
  let status: string;
  try {
    status = await readFile(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const bytes = (field: string) =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
  return { now: bytes('VmRSS'), peak: bytes('VmHWM') };
}

/**
 * Follows the peak resident memory of `pid` from now until `stop()`, which resolves with it in
 * bytes (undefined where there is no /proc). The kernel's high-water mark is reset first
 * (writing 5 to /proc/<pid>/clear_refs), so the peak is this window's, spikes between samples
 * included; where that is refused, VmRSS is sampled every 100 ms instead.
 */
export async function watchPeakRss(pid: number): Promise<{ stop(): Promise<number | undefined> }> {
  const reset = await writeFile(`/proc/${pid}/clear_refs`, '5').then(
    () => true,
    () => false,
  );
  let sampled = 0;
  let sampling: Promise<void> = Promise.resolve();
  const timer = reset
    ? undefined
    : setInterval(() => {
        sampling = residentMemory(pid).then((m) => {
          if (m) sampled = Math.max(sampled, m.now);
        });
      }, 100);
  return {
    async stop() {
      clearInterval(timer);
      await sampling;
      const m = await residentMemory(pid);
      if (!m) return sampled || undefined;
      return Math.max(sampled, m.now, reset ? m.peak : 0);
    },
  };
}
