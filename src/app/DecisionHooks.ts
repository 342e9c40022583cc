import type { BlockSource, DecisionListener } from '../core/decisions.js';

/** What the decision capabilities (limits, quotas) are given by the root besides the store. */
export interface DecisionHooks {
  /** Told of every answer: the audit and the metrics. */
  readonly listener: DecisionListener;
  /** Keys blocked for an attack (CheckLimit asks it before deciding). */
  readonly blocks: BlockSource;
  /** Told of each decision batch sent to the database: the store's name and its size. */
  readonly onBatch: (store: string, items: number) => void;
  /** Told of each check of a batch call (CheckLimits) answered with an error: method, code. */
  readonly onItemError: (method: string, code: number) => void;
}
