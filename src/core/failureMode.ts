/** How a decision is answered while the database does not answer in time. */
export type FailureMode = 'open' | 'closed';

/** What a decision says when it is the failure mode's answer rather than a decision. */
export interface FailureModeAnswer {
  readonly allowed: boolean;
  /** Set when denied: when the caller may try again, in ms. */
  readonly retryAfterMs: number | null;
  readonly degraded: true;
}

/**
 * The failure mode's answer, shared by every kind of decision: `open` admits, `closed` denies
 * with a retry after one second. Always `degraded`, so callers can tell it from a decision.
 */
export function failureModeAnswer(mode: FailureMode): FailureModeAnswer {
  const open = mode === 'open';
  return { allowed: open, retryAfterMs: open ? null : 1000, degraded: true };
}
