import type { Middleware } from './Middleware.js';

/** What every call adapter needs. */
export interface HandlerDeps {
  /** Run around every call, the first outermost: logging and metrics, authentication. */
  readonly middleware: readonly Middleware[];
  /** Aborts when the server starts shutting down: streams end so draining does not wait. */
  readonly shutdown?: AbortSignal;
}
