import os from 'node:os';
import { machineCpu, treeCpu } from './processCpu.js';

/** CPU time spent between a window's start and its end. */
export interface CpuSpent {
  /** Of the server process, in ms; undefined when it is not a local child. */
  readonly serverMs: number | undefined;
  /** Of the PostgreSQL processes, in ms; undefined when none was seen (no figure, not 0). */
  readonly databaseMs: number | undefined;
  /** Of this process: the load generator (and, for the peer, the rate limiter itself), in ms. */
  readonly clientMs: number;
  /**
   * Cores kept busy on average by the bench's processes (server, database, client) and by every
   * other process on the machine (from /proc/stat); undefined where there is no /proc/stat.
   */
  readonly cores: { readonly ours: number; readonly others: number } | undefined;
}

/**
 * Starts a window over the CPU time of the server `serverPid` (when a local child), of the
 * PostgreSQL processes below `databaseRoot` (the server's by default: the database it embeds),
 * of this process and of the whole machine; `end()` gives what each spent since. The bench
 * shares the machine: the cores other processes kept busy say when a figure was taken on a busy
 * one.
 */
export async function cpuWindow(
  serverPid: number | undefined,
  databaseRoot = serverPid,
): Promise<{ end(): Promise<CpuSpent> }> {
  const cpu = async () => ({
    server: serverPid === undefined ? undefined : (await treeCpu(serverPid))?.server,
    database: databaseRoot === undefined ? undefined : (await treeCpu(databaseRoot))?.database,
  });
  const machineBefore = await machineCpu();
  const before = await cpu();
  const client = process.cpuUsage();
  return {
    async end() {
      const clientMs = (({ user, system }) => (user + system) / 1000)(process.cpuUsage(client));
      const after = await cpu();
      const machineAfter = await machineCpu();
      const spent = (a: number | undefined, b: number | undefined) =>
        a === undefined || b === undefined ? undefined : b - a;
      const serverMs = spent(before.server, after.server);
      const databaseMs = after.database ? spent(before.database, after.database) : undefined;
      let cores: CpuSpent['cores'];
      if (machineBefore && machineAfter) {
        // The machine's time is summed over every core: cores × elapsed time.
        const asCores = (ms: number) =>
          (ms / (machineAfter.total - machineBefore.total)) * os.availableParallelism();
        const ours = (serverMs ?? 0) + (databaseMs ?? 0) + clientMs;
        const others = Math.max(0, machineAfter.busy - machineBefore.busy - ours);
        cores = { ours: asCores(ours), others: asCores(others) };
      }
      return { serverMs, databaseMs, clientMs, cores };
    },
  };
}
