/**
 * WatchLoad cost. Starts a server (embedded PostgreSQL in a temporary folder, or DATABASE_URL
 * when set) as a child process and measures its CPU (percent of one core, from
 * /proc/<pid>/stat) and resident memory over a window with no watchers, then with
 * QUOTA_BENCH_WATCHERS streams open (default 500) at the default 1 s interval.
 *
 * Env: QUOTA_BENCH_WATCHERS (default 500), QUOTA_BENCH_SECONDS (per window, default 10).
 * Run: npm run build && node dist/bench/watchers.js
 */
import { connect } from '@quota-authority/client';
import { openWatchers, type Watchers } from './openWatchers.js';
import { residentMemory } from './peakRss.js';
import { cpuTicks, TICKS } from './processCpu.js';
import { startServer, waitServing } from './startServer.js';

const WATCHERS = Number(process.env['QUOTA_BENCH_WATCHERS'] ?? 500);
const SECONDS = Number(process.env['QUOTA_BENCH_SECONDS'] ?? 10);

/** Resident memory of `pid` in MiB (VmRSS). */
async function rssMiB(pid: number): Promise<number> {
  return ((await residentMemory(pid))?.now ?? 0) / 2 ** 20;
}

async function measure(pid: number, label: string, received: () => number): Promise<void> {
  const t0 = performance.now();
  const c0 = await cpuTicks(pid);
  const m0 = received();
  let peak = 0;
  const until = t0 + SECONDS * 1000;
  while (performance.now() < until) {
    peak = Math.max(peak, await rssMiB(pid));
    await new Promise((r) => setTimeout(r, 500));
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = ((await cpuTicks(pid)) - c0) / TICKS / seconds;
  const rss = await rssMiB(pid);
  console.log(
    [
      label.padEnd(14),
      `cpu ${(cpu * 100).toFixed(1).padStart(5)}% of one core`,
      `rss ${rss.toFixed(1)} MiB (peak ${Math.max(peak, rss).toFixed(1)})`,
      `${Math.round((received() - m0) / seconds)} snapshots/s received`,
    ].join('  '),
  );
}

async function main(): Promise<void> {
  const server = await startServer({ LOG_LEVEL: 'warn' });
  const pid = server.child.pid!;
  const client = connect({ address: server.address, token: server.token });
  let watchers: Watchers | undefined;
  try {
    await waitServing(client);
    // Let start-up work (first samples, JIT) settle before the first window.
    await new Promise((r) => setTimeout(r, 3000));
    console.log(`WatchLoad cost, ${SECONDS} s windows, server pid ${pid}`);
    await measure(pid, '0 watchers', () => 0);
    const opened = await openWatchers(server.address, server.token, WATCHERS);
    watchers = opened;
    await new Promise((r) => setTimeout(r, 3000));
    await measure(pid, `${WATCHERS} watchers`, () => opened.received());
  } finally {
    watchers?.close();
    client.close();
    await server.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
