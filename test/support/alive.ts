import { readFileSync } from 'node:fs';

/**
 * Whether a process with this id runs. A zombie (ended, not yet reaped: a daemon whose parent
 * exited waits for PID 1 to reap it, which not every container init does) counts as ended.
 */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    // Field 3 of /proc/PID/stat is the state; the name before it is in parentheses.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}
