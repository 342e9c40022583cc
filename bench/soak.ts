/**
 * The soak (issue 16 point 5), outside the default run: `npm run bench -- --only soak`. On one
 * PostgreSQL (startBenchDatabase) it starts the service as the suite does, opens WATCHERS
 * WatchLoad streams and offers the suite's mix (suite.ts) at SOAK_RATE calls/s for SOAK_SECONDS,
 * whatever the answers do, each call's latency counted from when it was due (as openLoop). There
 * is no closed-loop warm-up: the soak's first minute (a third of a shorter run) is its warm-up,
 * and a burst at 64 in flight would grow the heap that the memory rule then compares with.
 *
 * Every 10 s it reads the server's VmRSS; per minute of due time it counts the calls, their
 * errors (by kind), denied and degraded, p50 and p99, and takes the server's RSS at the minute's
 * end and its peak within it (VmHWM, reset at the minute's start), the CPU per answered call and
 * the cores other processes kept busy; from the server's metrics, its V8 heap in use and the
 * calls it answered with an error status, by method and status (the light client does not read
 * trailers). printSoak.ts prints the table and the verdicts.
 */
import { status } from '@grpc/grpc-js';
import { connect } from '@quota-authority/client';
import { freePort } from '../src/freePort.js';
import { cpuWindow, type CpuSpent } from './cpuWindow.js';
import { Tally, type Outcome } from './measure.js';
import { openWatchers, type Watchers } from './openWatchers.js';
import { clock, pace } from './Pacer.js';
import { residentMemory, watchPeakRss } from './peakRss.js';
import { printSoak } from './printSoak.js';
import { CONNECT_OPTIONS, openCallers, useBenchRule } from './runServerSuite.js';
import { failedSince, scrapeServerMetrics, type ServerMetrics } from './serverMetrics.js';
import { CLIENT, SOAK_RATE, SOAK_SECONDS, WATCHERS } from './settings.js';
import { startBenchDatabase } from './startBenchDatabase.js';
import { startServer, waitServing } from './startServer.js';
import { SUITE } from './suite.js';

/** How often the server's VmRSS is read, in seconds. */
const SAMPLE_SECONDS = 10;

/** One minute of the soak (the last may be shorter): the calls that were due in it. */
export interface SoakMinute {
  /** 1 for the first minute. */
  readonly index: number;
  /** Its span, in seconds from the start. */
  readonly from: number;
  readonly to: number;
  readonly tally: Tally;
  /** Failed calls by kind (grpc-js: the status code; the light client: its message). */
  readonly errors: Map<string, number>;
  /** Calls the server answered with an error status in the minute, by method and status. */
  serverFailed?: Map<string, number>;
  /** V8's heap in use in the server at the minute's end, in bytes. */
  heapUsed?: number;
  /** The server's VmRSS read at the minute's end, in bytes. */
  rssEnd?: number;
  /** The server's peak RSS within the minute, in bytes. */
  rssMax?: number;
  cpu?: CpuSpent;
  /** WatchLoad snapshots received in the minute, over every stream. */
  snapshots?: number;
}

/** The server's VmRSS at `at` seconds from the start, in bytes. */
export interface RssSample {
  readonly at: number;
  readonly rss: number;
}

/** What the soak measured. */
export interface SoakResult {
  readonly label: string;
  readonly whole: Tally;
  /** How often the server's VmRSS was read, in seconds. */
  readonly sampleSeconds: number;
  readonly minutes: readonly SoakMinute[];
  readonly samples: readonly RssSample[];
  /** The server's VmRSS just before the first call, in bytes. */
  readonly rssBefore: number | undefined;
  /** Failed calls by kind, with when the first and the last were due (seconds from the start). */
  readonly errors: ReadonlyMap<string, { count: number; firstAt: number; lastAt: number }>;
  /** Calls the server answered with an error status, by method and status (its metrics). */
  readonly serverFailed: ReadonlyMap<string, number>;
  readonly cpu: CpuSpent;
  /** WatchLoad streams open throughout, and those that ended before the soak closed them. */
  readonly watchers: { readonly open: number; readonly snapshots: number; readonly lost: number };
}

/** Runs the soak on a database and a server of its own, then prints its report. */
export async function soakBench(): Promise<void> {
  const mix = SUITE.find((s) => s.name === 'mix')!;
  const db = await startBenchDatabase();
  try {
    // Its metrics name the status of each failed call, which the light client does not read.
    const metricsPort = await freePort();
    const server = await startServer({
      DATABASE_URL: db.url,
      QUOTA_METRICS_PORT: String(metricsPort),
    });
    const client = connect({ address: server.address, token: server.token, ...CONNECT_OPTIONS });
    const closers: (() => void)[] = [() => client.close()];
    try {
      await waitServing(client);
      await useBenchRule(client);
      const callers = openCallers(server.address, client, server.token, closers);
      const watchers = await openWatchers(server.address, server.token, WATCHERS);
      closers.push(() => watchers.close());
      const label = `soak: ${mix.label}, ${SOAK_RATE}/s offered`;
      console.log(
        `\n${label} for ${SOAK_SECONDS} s, quota-authority at ${server.address} (pid ${server.child.pid}); ${CLIENT} client; the server's RSS every ${SAMPLE_SECONDS} s`,
      );
      const pid = server.child.pid!;
      printSoak(await soak(label, mix.call(callers), { pid, metricsPort, db: db.root, watchers }));
    } finally {
      for (const close of closers) close();
      await server.stop();
    }
  } finally {
    await db.stop();
  }
}

/** The server the soak watches. */
interface Watched {
  readonly pid: number;
  readonly metricsPort: number;
  /** The process whose `postgres` descendants are the database (cpuWindow). */
  readonly db: number | undefined;
  readonly watchers: Watchers;
}

async function soak(
  label: string,
  call: (n: number) => Promise<Outcome>,
  watched: Watched,
): Promise<SoakResult> {
  const { pid, watchers } = watched;
  const minutes: SoakMinute[] = [];
  for (let from = 0; from < SOAK_SECONDS; from += 60) {
    const index = minutes.length + 1;
    const to = Math.min(from + 60, SOAK_SECONDS);
    minutes.push({ index, from, to, tally: new Tally(`minute ${index}`), errors: new Map() });
  }
  const samples: RssSample[] = [];
  const errors = new Map<string, { count: number; firstAt: number; lastAt: number }>();
  const rssBefore = (await residentMemory(pid))?.now;
  const metricsBefore = await scrapeServerMetrics(watched.metricsPort);
  const whole = new Tally(label);
  const cpu = await cpuWindow(pid, watched.db);
  const lostBefore = watchers.lost();
  const receivedBefore = watchers.received();
  const sampling = sampleMinutes(watched, clock(), minutes, samples, metricsBefore);

  const perMinute = SOAK_RATE * 60;
  let outstanding = 0;
  let paced = false;
  let drained: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (drained = resolve));
  const finished = () => {
    if (--outstanding === 0 && paced) drained();
  };
  await pace(SOAK_RATE, Math.round(SOAK_RATE * SOAK_SECONDS), (n, dueAt) => {
    const minute = minutes[Math.min(minutes.length - 1, Math.floor(n / perMinute))]!;
    outstanding++;
    call(n).then(
      (res) => {
        const ms = clock() - dueAt;
        minute.tally.answered(res, ms);
        whole.answered(res, ms);
        finished();
      },
      (err: unknown) => {
        const kind = errorKind(err);
        minute.errors.set(kind, (minute.errors.get(kind) ?? 0) + 1);
        const at = n / SOAK_RATE;
        const seen = errors.get(kind);
        if (seen) {
          seen.count++;
          seen.lastAt = at;
        } else errors.set(kind, { count: 1, firstAt: at, lastAt: at });
        minute.tally.failed(err);
        whole.failed(err);
        finished();
      },
    );
  });
  paced = true;
  if (outstanding > 0) await done;
  await sampling;
  return {
    label,
    whole,
    sampleSeconds: SAMPLE_SECONDS,
    minutes,
    samples,
    rssBefore,
    errors,
    serverFailed: failedSince(metricsBefore, await scrapeServerMetrics(watched.metricsPort)),
    cpu: await cpu.end(),
    watchers: {
      open: WATCHERS,
      snapshots: watchers.received() - receivedBefore,
      lost: watchers.lost() - lostBefore,
    },
  };
}

/**
 * Reads the server's VmRSS every SAMPLE_SECONDS from `started` (and at each minute's end), and
 * closes each minute: its RSS at the end, its peak, its CPU, the snapshots received in it, and
 * from the server's metrics its heap at the end and the calls it failed.
 */
async function sampleMinutes(
  { pid, metricsPort, db, watchers }: Watched,
  started: number,
  minutes: SoakMinute[],
  samples: RssSample[],
  metricsBefore: ServerMetrics | undefined,
): Promise<void> {
  let metrics = metricsBefore;
  for (const m of minutes) {
    const cpu = await cpuWindow(pid, db);
    const peak = await watchPeakRss(pid);
    const received = watchers.received();
    let last: number | undefined;
    for (let at = Math.min(m.from + SAMPLE_SECONDS, m.to); ;) {
      const wait = started + at * 1000 - clock();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      last = (await residentMemory(pid))?.now;
      if (last !== undefined) samples.push({ at, rss: last });
      if (at >= m.to) break;
      at = Math.min(at + SAMPLE_SECONDS, m.to);
    }
    m.rssEnd = last;
    const inMinute = samples.filter((s) => s.at > m.from && s.at <= m.to).map((s) => s.rss);
    const max = Math.max(0, (await peak.stop()) ?? 0, ...inMinute);
    m.rssMax = max > 0 ? max : undefined;
    m.cpu = await cpu.end();
    m.snapshots = watchers.received() - received;
    const scraped = await scrapeServerMetrics(metricsPort);
    m.serverFailed = failedSince(metrics, scraped);
    m.heapUsed = scraped?.heapUsed;
    metrics = scraped ?? metrics;
    const failed = minutes.reduce((sum, x) => sum + x.tally.errors, 0);
    const mb = (v: number | undefined) => (v === undefined ? 'n/a' : (v / 1e6).toFixed(1));
    console.log(
      `  minute ${m.index} of ${minutes.length}: server RSS ${mb(m.rssEnd)} MB (max ${mb(m.rssMax)} MB), ${failed} errors so far`,
    );
  }
}

/** A failed call's kind: grpc-js's status code name, else the light client's message. */
function errorKind(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'number') return status[code] ?? `status ${code}`;
  return err instanceof Error ? err.message : String(err);
}
