import { status } from '@grpc/grpc-js';
import type { Logger } from '../log.js';
import type { CallObserver } from './CallObserver.js';
import { toStatus, type MappedStatus } from './toStatus.js';

/** What every call adapter needs. */
export interface HandlerDeps {
  readonly logger: Logger;
  readonly observer?: CallObserver;
}

/** A call being served, timed from its start. */
export interface CallRecord {
  /** Observes the call and writes its one log line: method, status, ms and `fields`. */
  end(code: status, fields?: Record<string, unknown>): void;
  /** Maps an error through the toStatus boundary; internal errors are logged with their stack. */
  fail(err: unknown): MappedStatus;
}

/** Starts the record of one call of `method`; the adapters share it. */
export function startCall(method: string, deps: HandlerDeps): CallRecord {
  const started = performance.now();
  return {
    end(code, fields) {
      const ms = Math.round((performance.now() - started) * 1000) / 1000;
      deps.observer?.observe(method, code, ms);
      deps.logger.info({ method, status: status[code], ms, ...fields }, 'call');
    },
    fail(err) {
      const mapped = toStatus(err);
      if (mapped.internal) deps.logger.error({ err, method }, 'internal error');
      return mapped;
    },
  };
}
