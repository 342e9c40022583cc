import { readdirSync, readFileSync } from 'node:fs';

/** Processes whose parent is `pid` (field 4 of /proc/PID/stat; the names here hold no space). */
export function childrenOf(pid: number): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        return readFileSync(`/proc/${d}/stat`, 'utf8').split(' ')[3] === String(pid);
      } catch {
        return false;
      }
    })
    .map(Number);
}
