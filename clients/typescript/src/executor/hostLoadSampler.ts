import type { QuotaConnection } from '../connect.js';
import { HostLoadReader } from './HostLoadReader.js';

/**
 * One executor's wish to have its host's load reported. Part of the contract between copies of
 * the package (see SharedSampler): another version's sampler reads these fields, so they only
 * ever gain optional ones.
 */
export interface LoadReportTarget {
  readonly connection: Pick<QuotaConnection, 'quota'>;
  readonly host: string;
  readonly intervalMs: number;
  readonly onReport: (throttleFactor: number) => void;
  readonly onError: (error: unknown) => void;
}

/** The state of this process's load sampler, for metrics and tests. */
export interface LoadSamplerStatus {
  /** Executors reporting load through it now. */
  readonly executors: number;
  /** Whether its timer runs (exactly one timer per process while `executors` > 0). */
  readonly running: boolean;
  /** Its interval in milliseconds (the shortest its executors ask for); undefined when stopped. */
  readonly intervalMs: number | undefined;
  /** Since the process started: readings of the host, reports answered, failures. */
  readonly samples: number;
  readonly reports: number;
  readonly failures: number;
}

/**
 * The one sampler of the process, shared by every copy of the package in it (its ES module and
 * CommonJS builds loaded side by side, a bundler's duplicates): the first copy to need it puts it
 * on globalThis, and the others, of whatever version, use its two functions. Minimal on purpose:
 * a version that needs more must take another key (and accept a second sampler).
 */
interface SharedSampler {
  join(target: LoadReportTarget): () => void;
  status(): LoadSamplerStatus;
}

const KEY = Symbol.for('@quota-authority/client.loadSampler');

/** Adds a target; the returned function removes it, and the last one out stops the timer. */
export function joinLoadSampler(target: LoadReportTarget): () => void {
  return shared().join(target);
}

export function loadSamplerStatus(): LoadSamplerStatus {
  const s = shared().status();
  // Another version's answer: only the fields this one knows.
  return {
    executors: s.executors,
    running: s.running,
    intervalMs: s.intervalMs,
    samples: s.samples,
    reports: s.reports,
    failures: s.failures,
  };
}

function shared(): SharedSampler {
  const slot = globalThis as { [KEY]?: Partial<SharedSampler> };
  const found = slot[KEY];
  if (typeof found?.join === 'function' && typeof found.status === 'function')
    return found as SharedSampler;
  const created = createSampler();
  // Not enumerable: it stays out of anything that walks globalThis.
  Object.defineProperty(globalThis, KEY, { value: created, configurable: true, writable: true });
  return created;
}

/** One timer, one reading of the host per tick, one report per connection and host. */
function createSampler(): SharedSampler {
  const targets = new Set<LoadReportTarget>();
  const totals = { samples: 0, reports: 0, failures: 0 };
  let reader: HostLoadReader | undefined;
  let timer: NodeJS.Timeout | undefined;
  let intervalMs: number | undefined;
  let busy = false;

  const retime = (): void => {
    const shortest = Math.min(...[...targets].map((t) => t.intervalMs));
    if (shortest === intervalMs) return;
    clearInterval(timer);
    intervalMs = shortest;
    timer = setInterval(() => void tick(), shortest);
    // Reporting load is no reason to keep a process alive.
    timer.unref();
  };

  /** Never rejects: every failure goes to the targets' onError. */
  const tick = async (): Promise<void> => {
    // A slow reading or server must not pile up ticks.
    if (busy || !reader) return;
    busy = true;
    const current = [...targets];
    try {
      const figures = await reader.read();
      totals.samples++;
      await Promise.all(
        groupByConnectionAndHost(current).map(async ({ connection, host, group }) => {
          try {
            const { throttleFactor } = await connection.quota.reportLoad({ host, ...figures });
            totals.reports++;
            for (const t of group) safely(() => t.onReport(throttleFactor));
          } catch (error) {
            totals.failures++;
            for (const t of group) safely(() => t.onError(error));
          }
        }),
      );
    } catch (error) {
      totals.failures++;
      for (const t of current) safely(() => t.onError(error));
    } finally {
      busy = false;
    }
  };

  return {
    join(target) {
      if (!reader) {
        reader = new HostLoadReader();
        // A first reading, so that the first report already has rates over an interval.
        void reader.read().catch(() => undefined);
      }
      targets.add(target);
      retime();
      let left = false;
      return () => {
        if (left) return;
        left = true;
        targets.delete(target);
        if (targets.size > 0) return retime();
        clearInterval(timer);
        timer = undefined;
        intervalMs = undefined;
        // The next executor starts with a fresh first reading.
        reader = undefined;
      };
    },
    status: () => ({
      executors: targets.size,
      running: timer !== undefined,
      intervalMs,
      ...totals,
    }),
  };
}

/** One report per connection and host, however many executors share them. */
function groupByConnectionAndHost(targets: readonly LoadReportTarget[]) {
  const groups = new Map<LoadReportTarget['connection'], Map<string, LoadReportTarget[]>>();
  for (const t of targets) {
    const byHost = groups.get(t.connection) ?? new Map<string, LoadReportTarget[]>();
    groups.set(t.connection, byHost);
    byHost.set(t.host, [...(byHost.get(t.host) ?? []), t]);
  }
  return [...groups].flatMap(([connection, byHost]) =>
    [...byHost].map(([host, group]) => ({ connection, host, group })),
  );
}

/** A hook that throws must not stop the sampler nor surface as an unhandled rejection. */
function safely(hook: () => void): void {
  try {
    hook();
  } catch {
    // The hook's own fault; nothing to do here.
  }
}
