import type { ScenarioResult } from './runServerSuite.js';
import { CONCURRENCY, RATE, type SuiteScenario } from './settings.js';
import type { PeerScenario } from './suite.js';

/** Everything one run measured: the service's scenarios and both baselines'. */
export interface SuiteResults {
  readonly service: ReadonlyMap<SuiteScenario, ScenarioResult>;
  readonly noop: ReadonlyMap<SuiteScenario, ScenarioResult>;
  readonly peer: ReadonlyMap<PeerScenario, ScenarioResult>;
}

/** One of issue 16's targets, and how this run did against it. */
export interface TargetCheck {
  readonly target: string;
  /** The figure compared, undefined when a scenario it needs was not run. */
  readonly figure: number | undefined;
  readonly unit: '×' | 'µs' | 'MB';
  readonly bound: number;
  /** Whether the figure may be at least (≥) or at most (≤) the bound. */
  readonly direction: '≥' | '≤';
  readonly met: boolean | undefined;
}

/** a / b, undefined when either is missing or b is 0. */
export function ratio(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined || b === undefined || b === 0 ? undefined : a / b;
}

/** The larger of the two loops' peak RSS, in bytes. */
export function peakRss(r: ScenarioResult | undefined): number | undefined {
  const values = [r?.closed.serverPeakRss, r?.open.serverPeakRss].filter(
    (v): v is number => v !== undefined,
  );
  return values.length === 0 ? undefined : Math.max(...values);
}

function check(
  target: string,
  figure: number | undefined,
  direction: '≥' | '≤',
  bound: number,
  unit: TargetCheck['unit'],
): TargetCheck {
  const met =
    figure === undefined ? undefined : direction === '≥' ? figure >= bound : figure <= bound;
  return { target, figure, unit, bound, direction, met };
}

/**
 * Issue 16's targets, each from figures of this one run (client, server and database on this
 * machine). The no-op's CheckLimit baseline is its 10,000-key scenario: it answers every key
 * alike.
 */
export function checkTargets(r: SuiteResults): TargetCheck[] {
  const dps = (m: ScenarioResult | undefined) => m?.closed.perSecond;
  const p99 = (m: ScenarioResult | undefined) => m?.open.p99Ms;
  const noopLimit = r.noop.get('keys');
  const offered = RATE === 2000 ? '2,000' : `${RATE} (the target says 2,000)`;
  const inFlight = CONCURRENCY === 64 ? '64' : `${CONCURRENCY} (the target says 64)`;
  const mix = peakRss(r.service.get('mix'));
  return [
    check(
      "CheckLimit decisions/s over 10,000 keys, to the no-op's",
      ratio(dps(r.service.get('keys')), dps(noopLimit)),
      '≥',
      0.8,
      '×',
    ),
    check(
      "CheckLimit decisions/s on one hot key, to the no-op's",
      ratio(dps(r.service.get('hot')), dps(noopLimit)),
      '≥',
      0.8,
      '×',
    ),
    check(
      "CheckLimits (client batching) decisions/s over 10,000 keys, to the peer's",
      ratio(dps(r.service.get('batch-keys')), dps(r.peer.get('keys'))),
      '≥',
      2,
      '×',
    ),
    check(
      "CheckLimits (client batching) decisions/s on one hot key, to the peer's",
      ratio(dps(r.service.get('batch-hot')), dps(r.peer.get('hot'))),
      '≥',
      2,
      '×',
    ),
    check(
      `CheckLimit p99 at ${offered} calls/s offered (10,000 keys), to the no-op's`,
      ratio(p99(r.service.get('keys')), p99(noopLimit)),
      '≤',
      1.5,
      '×',
    ),
    check(
      `server CPU per CheckLimit decision at ${inFlight} in flight (10,000 keys)`,
      r.service.get('keys')?.closed.serverUs,
      '≤',
      70,
      'µs',
    ),
    check(
      'server peak RSS under the mix',
      mix === undefined ? undefined : mix / 1e6,
      '≤',
      200,
      'MB',
    ),
  ];
}
