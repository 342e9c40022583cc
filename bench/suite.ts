import {
  CheckLimitRequest,
  type CheckLimitResponse,
} from '../clients/typescript/src/gen/quota/v1/quota_service.js';
import {
  checkCommand,
  recordCommand,
  Reservations,
  userOf,
  type CheckCommand,
  type RecordCommand,
} from './commandCalls.js';
import type { Caller, Outcome } from './measure.js';
import { WATCHERS, type SuiteScenario } from './settings.js';

/** What a scenario's calls go through, on one server. */
export interface Callers {
  /** CheckLimit through the bench's client (QUOTA_BENCH_CLIENT). */
  readonly checkLimit: Caller<CheckLimitRequest, CheckLimitResponse>;
  /** checkLimit of the client package's connect(), with its default batching into CheckLimits. */
  readonly batched: Caller<CheckLimitRequest, CheckLimitResponse>;
  readonly checkCommandQuota: CheckCommand;
  readonly recordExecution: RecordCommand;
}

/** The method a scenario spends its calls on, for the warm-up. */
export type Method = 'checkLimit' | 'batched' | 'checkCommandQuota' | 'recordExecution';

/** Which peer scenario a suite scenario is compared with. */
export type PeerScenario = 'keys' | 'hot';

export interface Scenario {
  readonly name: SuiteScenario;
  readonly label: string;
  /** WatchLoad streams held open while it runs (openWatchers.ts). */
  readonly watchers: number;
  readonly methods: readonly Method[];
  /** The no-op baseline it is compared with: a scenario run against the no-op server. */
  readonly noop: SuiteScenario;
  readonly peer: PeerScenario;
  /** The scenario's calls: call n of each loop (n counts from 0 in each); one per scenario run. */
  call(callers: Callers): (n: number) => Promise<Outcome>;
}

/** The key of call n among the 10,000, for the service and the peer alike. */
export const keyOf = (n: number): string => `key-${n % 10_000}`;
/** The one hot key, for the service and the peer alike. */
export const HOT_KEY = 'hot';

const limit = (key: string) => CheckLimitRequest.fromPartial({ userId: key });

/**
 * 80 % CheckLimit over 10,000 keys, 10 % CheckCommandQuota and 10 % RecordExecution over 10,000
 * users, each record settling the oldest reservation that the mix's checks obtained and no record
 * settled yet (none, when none is left: counted when recorded).
 */
function mixed(c: Callers): (n: number) => Promise<Outcome> {
  const pool = new Reservations();
  return (n) => {
    switch (n % 10) {
      case 0:
        return checkCommand(c.checkCommandQuota, userOf(n), pool);
      case 5: {
        const r = pool.take();
        return recordCommand(c.recordExecution, n, r?.userId ?? userOf(n), r?.reservationId);
      }
      default:
        return c.checkLimit(limit(keyOf(n)));
    }
  };
}

/**
 * The suite, in the order it runs. Every scenario's figures are decisions: one per call, and one
 * per checkLimit call of the batching client however the calls were grouped.
 */
export const SUITE: readonly Scenario[] = [
  {
    name: 'keys',
    label: 'CheckLimit, 10,000 keys',
    watchers: 0,
    methods: ['checkLimit'],
    noop: 'keys',
    peer: 'keys',
    call: (c) => (n) => c.checkLimit(limit(keyOf(n))),
  },
  {
    name: 'hot',
    label: 'CheckLimit, 1 hot key',
    watchers: 0,
    methods: ['checkLimit'],
    noop: 'keys',
    peer: 'hot',
    call: (c) => () => c.checkLimit(limit(HOT_KEY)),
  },
  {
    name: 'batch-keys',
    label: 'CheckLimits batched, 10,000 keys',
    watchers: 0,
    methods: ['batched'],
    noop: 'batch-keys',
    peer: 'keys',
    call: (c) => (n) => c.batched(limit(keyOf(n))),
  },
  {
    name: 'batch-hot',
    label: 'CheckLimits batched, 1 hot key',
    watchers: 0,
    methods: ['batched'],
    noop: 'batch-keys',
    peer: 'hot',
    call: (c) => () => c.batched(limit(HOT_KEY)),
  },
  {
    name: 'quota',
    label: 'CheckCommandQuota, 10,000 users',
    watchers: 0,
    methods: ['checkCommandQuota'],
    noop: 'quota',
    peer: 'keys',
    call: (c) => (n) => checkCommand(c.checkCommandQuota, userOf(n)),
  },
  {
    // Counted when recorded: no reservation to obtain first, so the loop never runs short.
    name: 'record',
    label: 'RecordExecution, 10,000 users',
    watchers: 0,
    methods: ['recordExecution'],
    noop: 'record',
    peer: 'keys',
    call: (c) => (n) => recordCommand(c.recordExecution, n, userOf(n)),
  },
  {
    name: 'mix',
    label: `mix 80/10/10, ${WATCHERS} watchers`,
    watchers: WATCHERS,
    methods: ['checkLimit', 'checkCommandQuota', 'recordExecution'],
    noop: 'mix',
    peer: 'keys',
    call: mixed,
  },
  {
    name: 'watch',
    label: `CheckLimit, 10,000 keys, ${WATCHERS} watchers`,
    watchers: WATCHERS,
    methods: ['checkLimit'],
    noop: 'watch',
    peer: 'keys',
    call: (c) => (n) => c.checkLimit(limit(keyOf(n))),
  },
];
