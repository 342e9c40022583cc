import { status } from '@grpc/grpc-js';
import { QuotaCallError } from '../errors.js';

/**
 * What a failed decision means for the request: the quota service `unreachable` (the failure
 * mode applies), its `backlog` (503 with Retry-After: never admitted, or a flood would admit
 * itself), or an `error` of the call or of the caller's code (500, never admitted).
 */
export type GateFailure =
  | { readonly kind: 'unreachable' }
  | { readonly kind: 'backlog'; readonly retryAfterS: number }
  | { readonly kind: 'error' };

/** Where the decision was when it failed: in the caller's `request`, or in the call. */
export type GatePhase = 'request' | 'call';

const UNREACHABLE: GateFailure = { kind: 'unreachable' };
const ERROR: GateFailure = { kind: 'error' };
/** A Retry-After at most this long, in seconds, whatever a trailer says. */
const MAX_RETRY_AFTER_S = 86_400;

/**
 * The meaning of `err`. `deadlinePassed`: the gate's deadline fired; `connected`: whether the
 * channel had a live connection then (undefined: not known, as for a CheckLimitClient of one's
 * own). A deadline counts as unreachable only during the call on a channel known not to be
 * connected: on a connected one the call was queued behind others, which is the backlog.
 */
export function classifyFailure(
  err: unknown,
  deadlinePassed: boolean,
  phase: GatePhase,
  connected: boolean | undefined,
): GateFailure {
  const code = grpcCode(err);
  if (code === status.UNAVAILABLE) return UNREACHABLE;
  if (code === status.RESOURCE_EXHAUSTED) return { kind: 'backlog', retryAfterS: pushback(err) };
  if (code === status.DEADLINE_EXCEEDED || deadlinePassed)
    return phase === 'call' && connected === false
      ? UNREACHABLE
      : { kind: 'backlog', retryAfterS: 1 };
  return ERROR;
}

/** The gRPC status code of a QuotaCallError or a grpc-js ServiceError; undefined otherwise. */
function grpcCode(err: unknown): number | undefined {
  if (err instanceof QuotaCallError) return err.code;
  // A grpc-js error (a CheckLimitClient of one's own); a DOMException has a numeric code too,
  // but no details.
  const e = err as { code?: unknown; details?: unknown } | null;
  return err instanceof Error && typeof e?.code === 'number' && typeof e.details === 'string'
    ? e.code
    : undefined;
}

/**
 * Seconds the server asked the caller to wait (its `retry-after-ms` trailer, see the server's
 * src/grpc/toStatus.ts), rounded up; 1 without one.
 */
function pushback(err: unknown): number {
  const metadata = (err as { metadata?: { get?: (key: string) => unknown[] } }).metadata;
  const value =
    metadata?.get?.('retry-after-ms')[0] ?? metadata?.get?.('grpc-retry-pushback-ms')[0];
  const ms = Number(typeof value === 'string' ? value : NaN);
  if (!Number.isFinite(ms)) return 1;
  return Math.min(MAX_RETRY_AFTER_S, Math.max(1, Math.ceil(ms / 1000)));
}
