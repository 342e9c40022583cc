import { readdirSync, readFileSync } from 'node:fs';
import { parseProcStat } from './procStat.js';

/**
 * Decides whether this process's children CPU time (cutime + cstime of /proc/self/stat) grew,
 * across one child's life, by that child alone. The kernel adds a child's CPU time (and that of
 * the descendants it waited for) to its parent's when the parent reaps it, which Node does just
 * before the 'exit' event: so the growth is exact for that child, including the last moments no
 * sample can see, unless another child of this process was reaped meanwhile. Children this
 * module spawned are tracked; other children of the process are seen through
 * /proc/self/task/<tid>/children at the start and at the end. A child of other code that starts
 * and is reaped entirely within the window cannot be seen: its CPU time would be counted too.
 */

/** Executor children alive (spawned, 'exit' not yet seen). */
const live = new Set<number>();
/** 'exit' events of executor children so far. */
let exits = 0;

/** Taken just before a spawn. */
export interface LedgerMark {
  readonly exits: number;
  /** Children of this process before the spawn; undefined when /proc cannot tell. */
  readonly children: ReadonlySet<number> | undefined;
  /** This process's children CPU time in clock ticks; undefined off Linux. */
  readonly childTicks: number | undefined;
}

export function markBeforeSpawn(): LedgerMark {
  return { exits, children: childrenOfSelf(), childTicks: selfChildTicks() };
}

export function childSpawned(pid: number): void {
  live.add(pid);
}

/**
 * Call in the child's 'exit' handler: the ticks the child used (with the descendants it waited
 * for), or undefined when they cannot be told apart from another child's.
 */
export function childExited(pid: number, mark: LedgerMark): number | undefined {
  live.delete(pid);
  const after = selfChildTicks();
  const now = childrenOfSelf();
  // Another executor child's 'exit' seen, or one reaped whose 'exit' is still to come, or any
  // other child of the process gone: its CPU time is in the growth too.
  const alone =
    exits === mark.exits &&
    now !== undefined &&
    mark.children !== undefined &&
    [...mark.children, ...live].every((p) => now.has(p));
  exits++;
  if (!alone || after === undefined || mark.childTicks === undefined) return undefined;
  return after - mark.childTicks;
}

function selfChildTicks(): number | undefined {
  try {
    return parseProcStat(readFileSync('/proc/self/stat', 'utf8'))?.childTicks;
  } catch {
    return undefined;
  }
}

/** Children of every thread of this process (any thread may fork). */
function childrenOfSelf(): Set<number> | undefined {
  const read = (tid: string | number): string[] =>
    readFileSync(`/proc/self/task/${tid}/children`, 'utf8').split(' ');
  let pids: Set<number>;
  try {
    pids = new Set(
      read(process.pid)
        .filter((p) => p.trim() !== '')
        .map(Number),
    );
  } catch {
    // No /proc, or a kernel without CONFIG_PROC_CHILDREN.
    return undefined;
  }
  for (const tid of readdirSync('/proc/self/task')) {
    if (tid === String(process.pid)) continue;
    try {
      for (const p of read(tid)) if (p.trim() !== '') pids.add(Number(p));
    } catch {
      // The thread ended meanwhile; its children passed to another thread of the process.
    }
  }
  return pids;
}
