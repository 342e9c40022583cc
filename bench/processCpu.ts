import { readdir, readFile } from 'node:fs/promises';

/** Kernel clock ticks per second, which /proc/<pid>/stat counts CPU time in (100 on Linux). */
export const TICKS = 100;

interface ProcStat {
  readonly pid: number;
  readonly command: string;
  readonly parent: number;
  /** User plus system time, in ticks. */
  readonly ticks: number;
  /** User plus system time of the children it has waited for (cutime, cstime), in ticks. */
  readonly reaped: number;
}

function parseStat(stat: string): ProcStat {
  // The command name sits in parentheses and may hold spaces: fields are counted after ")".
  const open = stat.indexOf('(');
  const close = stat.lastIndexOf(')');
  const fields = stat.slice(close + 2).split(' ');
  return {
    pid: Number(stat.slice(0, open).trim()),
    command: stat.slice(open + 1, close),
    parent: Number(fields[1]),
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the command; cutime
    // and cstime follow.
    ticks: Number(fields[11]) + Number(fields[12]),
    reaped: Number(fields[13]) + Number(fields[14]),
  };
}

/** User plus system CPU time of one process, in ticks (Linux). */
export async function cpuTicks(pid: number): Promise<number> {
  return parseStat(await readFile(`/proc/${pid}/stat`, 'utf8')).ticks;
}

/** CPU time in ms of a server process and of the PostgreSQL processes below it. */
export interface TreeCpu {
  readonly server: number;
  readonly database: number;
}

/**
 * CPU time of `rootPid` and, apart, of every `postgres` process descended from it (the embedded
 * database and its backends), from /proc. A `postgres` process counts the time of the children
 * it has waited for too: the postmaster reaps the backends and autovacuum workers that end
 * between two readings, which would otherwise take their time with them (a minute of the soak
 * then read negative). Undefined where there is no /proc.
 */
export async function treeCpu(rootPid: number): Promise<TreeCpu | undefined> {
  let names: string[];
  try {
    names = await readdir('/proc');
  } catch {
    return undefined;
  }
  const stats = await Promise.all(
    names
      .filter((n) => /^\d+$/.test(n))
      .map((n) => readFile(`/proc/${n}/stat`, 'utf8').then(parseStat, () => undefined /* ended */)),
  );
  const children = new Map<number, ProcStat[]>();
  let root: ProcStat | undefined;
  for (const s of stats) {
    if (!s) continue;
    if (s.pid === rootPid) root = s;
    const siblings = children.get(s.parent);
    if (siblings) siblings.push(s);
    else children.set(s.parent, [s]);
  }
  if (!root) return undefined;
  let database = 0;
  const below = [...(children.get(rootPid) ?? [])];
  for (let s = below.pop(); s; s = below.pop()) {
    if (s.command === 'postgres') database += s.ticks + s.reaped;
    below.push(...(children.get(s.pid) ?? []));
  }
  return { server: (root.ticks * 1000) / TICKS, database: (database * 1000) / TICKS };
}

/** CPU time of the whole machine, from /proc/stat: busy and total, in ms over all cores. */
export interface MachineCpu {
  readonly busy: number;
  readonly total: number;
}

/** The machine's CPU time so far (Linux); undefined where there is no /proc/stat. */
export async function machineCpu(): Promise<MachineCpu | undefined> {
  let stat: string;
  try {
    stat = await readFile('/proc/stat', 'utf8');
  } catch {
    return undefined;
  }
  // cpu  user nice system idle iowait irq softirq steal guest guest_nice (guest time is
  // already counted in user and nice).
  const fields = stat.slice(0, stat.indexOf('\n')).trim().split(/\s+/).slice(1, 9).map(Number);
  const total = fields.reduce((a, b) => a + b, 0);
  const idle = fields[3]! + fields[4]!;
  return { busy: ((total - idle) * 1000) / TICKS, total: (total * 1000) / TICKS };
}
