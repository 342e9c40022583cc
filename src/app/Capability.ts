import type { Job } from '../jobs/Job.js';
import type { Logger } from '../log.js';
import type { GaugeSource } from '../metrics/GaugeSource.js';
import { Stops } from './Stops.js';

/** A part that must be ready for the server to report SERVING. */
export interface HealthPart {
  readonly name: string;
  ready(): boolean;
}

/**
 * What a wire<Capability> function gives the root: its gRPC handlers (typed by the generated
 * server interfaces, so the root's assembly fails to compile when a method has none), its
 * background jobs, what its health depends on, and how to stop it.
 */
export interface Capability<H> {
  readonly handlers: H;
  readonly jobs: readonly Job[];
  readonly health: readonly HealthPart[];
  /** Figures the metrics endpoint reads at each scrape (buffer sizes, pool use). */
  readonly gauges?: readonly GaugeSource[];
  stop(): Promise<void>;
}

/**
 * Runs a wiring step with a stop list of its own: what it started is stopped if a later step
 * throws, and otherwise by the capability's `stop`. `build` may return more than a capability
 * (the database wiring returns the pool every other capability uses).
 */
export async function wire<T extends Omit<Capability<unknown>, 'stop'>>(
  logger: Logger,
  build: (stops: Stops) => Promise<T>,
): Promise<T & { stop(): Promise<void> }> {
  const stops = new Stops(logger);
  try {
    return { ...(await build(stops)), stop: () => stops.run() };
  } catch (err) {
    await stops.run();
    throw err;
  }
}
