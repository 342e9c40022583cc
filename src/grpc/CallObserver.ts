import type { status } from '@grpc/grpc-js';

/** Receives every finished call, for metrics. */
export interface CallObserver {
  observe(method: string, code: status, ms: number): void;
}
