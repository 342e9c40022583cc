import os from 'node:os';
import { fixed, markdownTable, round } from './markdownTable.js';
import { SOAK_RATE, SOAK_SECONDS } from './settings.js';
import type { RssSample, SoakMinute, SoakResult } from './soak.js';

/** The most the server's RSS may grow from the soak's early window to its last one. */
const GROWTH_BOUND = 1.1;

/**
 * The memory rule's windows, in seconds from the start: a warm-up of a minute, then minutes 2–3
 * (`early`), against the last 2 minutes (`late`); in a run shorter than 6 minutes each is at
 * most a third of it, so that a short test run has three windows too.
 */
function memoryWindows(seconds: number): {
  warmUp: number;
  early: readonly [number, number];
  late: readonly [number, number];
} {
  const third = seconds / 3;
  const warmUp = Math.min(60, third);
  const span = Math.min(120, third);
  return { warmUp, early: [warmUp, warmUp + span], late: [seconds - span, seconds] };
}

/** The mean of the samples taken in (from, to], in bytes; undefined when none was. */
function meanRss(samples: readonly RssSample[], [from, to]: readonly [number, number]) {
  const inside = samples.filter((s) => s.at > from && s.at <= to);
  return inside.length === 0 ? undefined : inside.reduce((a, s) => a + s.rss, 0) / inside.length;
}

const mb = (bytes: number | undefined) => round(bytes === undefined ? undefined : bytes / 1e6, 1);
const span = ([from, to]: readonly [number, number]) => `${round(from, 0)}–${round(to, 0)} s`;

/** CPU per answered call of the minute, in µs. */
function perCall(ms: number | undefined, m: { calls: number; errors: number }) {
  return ms === undefined ? undefined : (ms * 1000) / Math.max(1, m.calls - m.errors);
}

function minuteFigures(m: SoakMinute) {
  const s = m.tally.summary();
  return {
    minute: m.index,
    seconds: m.to - m.from,
    calls: s.calls,
    errors: s.errors,
    ...(m.errors.size > 0 ? { errorsByKind: Object.fromEntries(m.errors) } : {}),
    ...(m.serverFailed?.size ? { serverFailed: Object.fromEntries(m.serverFailed) } : {}),
    denied: s.denied,
    degraded: s.degraded,
    p50Ms: round(s.p50Ms),
    p99Ms: round(s.p99Ms),
    maxMs: round(s.maxMs),
    rssEndMB: mb(m.rssEnd),
    rssMaxMB: mb(m.rssMax),
    heapUsedMB: mb(m.heapUsed),
    serverUs: round(perCall(m.cpu?.serverMs, s), 1),
    databaseUs: round(perCall(m.cpu?.databaseMs, s), 1),
    snapshots: m.snapshots,
    otherCores: round(m.cpu?.cores?.others),
  };
}

/**
 * The soak's report: the whole run's line, a table per minute, the errors by kind, then the two
 * verdicts (memory flat, no errors), each met / not met, and one `BENCH-SOAK {json}` line.
 */
export function printSoak(r: SoakResult): void {
  const whole = r.whole.report();
  const cores = r.cpu.cores;
  console.log(
    `${''.padEnd(58)}  CPU per answered call: server ${fixed(perCall(r.cpu.serverMs, whole), 0)} µs, database ${fixed(perCall(r.cpu.databaseMs, whole), 0)} µs, client ${fixed(perCall(r.cpu.clientMs, whole), 0)} µs${cores ? `; machine: bench ${cores.ours.toFixed(2)}, other processes ${cores.others.toFixed(2)} of ${os.availableParallelism()} cores` : ''}`,
  );

  const rows = r.minutes.map(minuteFigures);
  const header = [
    'minute',
    'calls',
    'errors',
    'denied',
    'degraded',
    'p50 ms',
    'p99 ms',
    'RSS end MB',
    'RSS max MB',
    'heap MB',
    'server µs',
    'db µs',
    'snapshots',
    'others',
  ];
  const lines = rows.map((f) => [
    f.seconds === 60 ? String(f.minute) : `${f.minute} (${f.seconds} s)`,
    String(f.calls),
    String(f.errors),
    String(f.denied),
    String(f.degraded),
    fixed(f.p50Ms, 2),
    fixed(f.p99Ms, 2),
    fixed(f.rssEndMB, 1),
    fixed(f.rssMaxMB, 1),
    fixed(f.heapUsedMB, 1),
    fixed(f.serverUs, 0),
    fixed(f.databaseUs, 0),
    f.snapshots === undefined ? '–' : String(f.snapshots),
    fixed(f.otherCores, 2),
  ]);
  console.log(
    `\nPer minute of due time: calls due in it and their outcomes; p50, p99 from when each was due; the server's RSS read at the minute's end and its peak within it, and its V8 heap in use at the end (its metrics); CPU per answered call of the server and the database; WatchLoad snapshots received; others: cores other processes on the machine kept busy (of ${os.availableParallelism()}). Server RSS before the first call: ${fixed(mb(r.rssBefore), 1)} MB.`,
  );
  for (const l of markdownTable(header, lines)) console.log(l);
  for (const [kind, e] of r.errors) {
    console.log(
      `  ${e.count} failed, due from ${e.firstAt.toFixed(1)} s to ${e.lastAt.toFixed(1)} s: ${kind}`,
    );
  }
  for (const m of r.minutes) {
    if (!m.serverFailed?.size) continue;
    const kinds = [...m.serverFailed].map(([kind, n]) => `${n} ${kind}`).join(', ');
    console.log(`  minute ${m.index}, answered with an error status by the server: ${kinds}`);
  }
  console.log(
    `  WatchLoad: ${r.watchers.open} streams, ${r.watchers.snapshots} snapshots received, ${r.watchers.lost} ended before the soak closed them`,
  );

  const windows = memoryWindows(SOAK_SECONDS);
  const early = meanRss(r.samples, windows.early);
  const late = meanRss(r.samples, windows.late);
  const growth = early === undefined || late === undefined ? undefined : late / early;
  const memoryMet = growth !== undefined && growth <= GROWTH_BOUND;
  const errorsMet = whole.errors === 0 && r.watchers.lost === 0;
  const verdict = (met: boolean) => (met ? 'met    ' : 'not met');
  console.log(
    `\nSoak (issue 16 point 5). Memory flat: the mean of the server's RSS samples (every ${r.sampleSeconds} s) over ${span(windows.late)} is at most ${GROWTH_BOUND.toFixed(2)} × their mean over ${span(windows.early)}: the last 2 minutes against minutes 2–3, after a first minute of warm-up (${round(windows.warmUp, 0)} s here; in a run under 6 minutes each window is at most a third of it). No errors: no call failed and no WatchLoad stream ended.`,
  );
  console.log(
    `  ${verdict(memoryMet)}  memory flat: ${fixed(mb(late), 1)} MB over ${span(windows.late)} vs ${fixed(mb(early), 1)} MB over ${span(windows.early)}: ${fixed(growth, 3)}× (bound ≤ ${GROWTH_BOUND.toFixed(2)}×)`,
  );
  console.log(
    `  ${verdict(errorsMet)}  errors: ${whole.errors} failed calls of ${whole.calls}, ${r.watchers.lost} WatchLoad streams ended (bound 0)`,
  );
  const json = {
    scenario: 'soak',
    label: r.label,
    offeredPerSecond: SOAK_RATE,
    seconds: SOAK_SECONDS,
    calls: whole.calls,
    errors: whole.errors,
    errorsByKind: Object.fromEntries(r.errors),
    serverFailed: Object.fromEntries(r.serverFailed),
    denied: whole.denied,
    degraded: whole.degraded,
    p50Ms: round(whole.p50Ms),
    p99Ms: round(whole.p99Ms),
    maxMs: round(whole.maxMs),
    serverUs: round(perCall(r.cpu.serverMs, whole), 1),
    databaseUs: round(perCall(r.cpu.databaseMs, whole), 1),
    clientUs: round(perCall(r.cpu.clientMs, whole), 1),
    otherCores: round(cores?.others),
    watchers: r.watchers,
    rssBeforeMB: mb(r.rssBefore),
    rssPeakMB: mb(Math.max(0, ...r.minutes.map((m) => m.rssMax ?? 0)) || undefined),
    memory: {
      earlySeconds: windows.early,
      lateSeconds: windows.late,
      earlyMeanMB: mb(early),
      lateMeanMB: mb(late),
      growth: round(growth, 3),
      bound: GROWTH_BOUND,
      met: memoryMet,
    },
    noErrors: { met: errorsMet },
    minutes: rows,
    rssSamples: r.samples.map((s) => [s.at, mb(s.rss)]),
  };
  console.log(`BENCH-SOAK ${JSON.stringify(json)}`);
}
