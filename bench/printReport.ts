import os from 'node:os';
import { fixed, markdownTable, round } from './markdownTable.js';
import { checkTargets, peakRss, ratio, type SuiteResults } from './checkTargets.js';
import { PEER_LABELS } from './runPeerSuite.js';
import type { ScenarioResult } from './runServerSuite.js';
import { CONCURRENCY, RATE, SECONDS } from './settings.js';
import { SUITE } from './suite.js';

/** One line of the report: a scenario of one server, with what it is compared with. */
interface Row {
  /** `keys`, `noop:keys`, `peer:hot`, … */
  readonly id: string;
  readonly server: 'quota-authority' | 'no-op' | 'peer';
  readonly label: string;
  readonly result: ScenarioResult;
  readonly noop?: { readonly id: string; readonly result: ScenarioResult | undefined };
  readonly peer?: { readonly id: string; readonly result: ScenarioResult | undefined };
}

function rows(r: SuiteResults): Row[] {
  const out: Row[] = [];
  for (const s of SUITE) {
    const result = r.service.get(s.name);
    if (!result) continue;
    out.push({
      id: s.name,
      server: 'quota-authority',
      label: s.label,
      result,
      noop: { id: `noop:${s.noop}`, result: r.noop.get(s.noop) },
      peer: { id: `peer:${s.peer}`, result: r.peer.get(s.peer) },
    });
  }
  for (const s of SUITE) {
    const result = r.noop.get(s.name);
    if (result)
      out.push({ id: `noop:${s.name}`, server: 'no-op', label: `no-op: ${s.label}`, result });
  }
  for (const [name, result] of r.peer) {
    out.push({ id: `peer:${name}`, server: 'peer', label: PEER_LABELS[name], result });
  }
  return out;
}

const maxOf = (a: number | undefined, b: number | undefined) =>
  a === undefined ? b : b === undefined ? a : Math.max(a, b);

/** A row's figures: decisions/s at CONCURRENCY in flight, latency and CPU, the ratios. */
function figures(row: Row) {
  const { closed, open } = row.result;
  const rss = peakRss(row.result);
  const vs = (base: Row['noop']) =>
    base && {
      baseline: base.id,
      decisionsPerSecond: round(ratio(closed.perSecond, base.result?.closed.perSecond)),
      p99: round(ratio(open.p99Ms, base.result?.open.p99Ms)),
    };
  return {
    decisionsPerSecond: Math.round(closed.perSecond),
    p50Ms: round(open.p50Ms),
    p99Ms: round(open.p99Ms),
    serverUsPerDecision: round(closed.serverUs, 1),
    databaseUsPerDecision: round(closed.databaseUs, 1),
    clientUsPerDecision: round(closed.clientUs, 1),
    serverPeakRssMB: round(rss === undefined ? undefined : rss / 1e6, 1),
    vsNoop: vs(row.noop),
    vsPeer: vs(row.peer),
    otherCores: round(maxOf(closed.otherCores, open.otherCores)),
  };
}

/** The measurement without its name, rounded, for the JSON line. */
function loop(m: ScenarioResult['closed']) {
  return {
    seconds: round(m.seconds),
    calls: m.calls,
    errors: m.errors,
    denied: m.denied,
    degraded: m.degraded,
    perSecond: Math.round(m.perSecond),
    p50Ms: round(m.p50Ms),
    p99Ms: round(m.p99Ms),
    maxMs: round(m.maxMs),
    serverUs: round(m.serverUs, 1),
    databaseUs: round(m.databaseUs, 1),
    clientUs: round(m.clientUs, 1),
    serverPeakRssMB: round(m.serverPeakRss === undefined ? undefined : m.serverPeakRss / 1e6, 1),
    otherCores: round(m.otherCores),
    ...(m.note ? { note: m.note } : {}),
  };
}

const show = (v: number | undefined) => (v === undefined ? '–' : String(v));

/**
 * The run's report: a table of every scenario and baseline, one `BENCH {json}` line each, then
 * issue 16's targets, each with its figure and met / not met (and a `BENCH-TARGET {json}` line).
 */
export function printReport(results: SuiteResults): void {
  const all = rows(results);
  const header = [
    'scenario',
    'decisions/s',
    'p50 ms',
    'p99 ms',
    'server µs',
    'db µs',
    'client µs',
    'peak RSS MB',
    '×no-op',
    '×peer',
    'p99 ×no-op',
    'p99 ×peer',
    'others',
  ];
  const lines = all.map((row) => {
    const f = figures(row);
    return [
      row.label,
      show(f.decisionsPerSecond),
      fixed(f.p50Ms, 2),
      fixed(f.p99Ms, 2),
      fixed(f.serverUsPerDecision, 0),
      fixed(f.databaseUsPerDecision, 0),
      fixed(f.clientUsPerDecision, 0),
      fixed(f.serverPeakRssMB, 1),
      fixed(f.vsNoop?.decisionsPerSecond, 2),
      fixed(f.vsPeer?.decisionsPerSecond, 2),
      fixed(f.vsNoop?.p99, 2),
      fixed(f.vsPeer?.p99, 2),
      fixed(f.otherCores, 2),
    ];
  });
  console.log(
    `\nSummary: decisions/s and CPU per decision at ${CONCURRENCY} in flight (client: this process, the load generator, and for the peer the rate limiter itself); p50 and p99 at ${RATE}/s offered; ${SECONDS} s per loop; the server's peak RSS over both loops; ratios of decisions/s and of p99 to the no-op baseline and to the peer (– where not measured); others: the most cores that other processes on the machine kept busy during either loop (of ${os.availableParallelism()}).`,
  );
  for (const l of markdownTable(header, lines, true)) console.log(l);
  console.log('');
  for (const row of all) {
    const json = {
      scenario: row.id,
      server: row.server,
      label: row.label,
      concurrency: CONCURRENCY,
      offeredPerSecond: RATE,
      ...figures(row),
      closed: loop(row.result.closed),
      open: loop(row.result.open),
    };
    console.log(`BENCH ${JSON.stringify(json)}`);
  }
  console.log('\nTargets (issue 16; ratios within this run):');
  const targets = checkTargets(results);
  const withUnit = (v: number, unit: string) => (unit === '×' ? `${v}×` : `${v} ${unit}`);
  for (const t of targets) {
    const verdict = t.met === undefined ? 'n/a    ' : t.met ? 'met    ' : 'not met';
    const figure =
      t.figure === undefined
        ? 'not measured'
        : withUnit(round(t.figure, t.unit === '×' ? 2 : 1)!, t.unit);
    console.log(
      `  ${verdict}  ${t.target}: ${figure} (target ${t.direction} ${withUnit(t.bound, t.unit)})`,
    );
  }
  for (const t of targets) {
    console.log(`BENCH-TARGET ${JSON.stringify({ ...t, figure: round(t.figure) })}`);
  }
}
