import type { GaugeSource } from './GaugeSource.js';

/** Metric name shared by every capability's batchers: Metrics merges sources of one name. */
export const DECISION_QUEUE_DEPTH = 'quota_decision_queue_depth';

/**
 * Decisions waiting in a store's batcher for a batch to take them, one series per store (those
 * whose batch is at the database are not counted). `depths` maps a store label to its reading.
 */
export function decisionQueueGauge(depths: Readonly<Record<string, () => number>>): GaugeSource {
  const stores = Object.entries(depths);
  return {
    name: DECISION_QUEUE_DEPTH,
    help: 'Decisions waiting in the batcher for a batch to the database, by store',
    labelNames: ['store'],
    read: () => stores.map(([store, depth]) => ({ labels: { store }, value: depth() })),
  };
}
