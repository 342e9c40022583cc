import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { QuotaCallError, toQuotaError } from './errors.js';
import type { ItemError } from './gen/quota/v1/quota_service.js';

// The typed errors CheckLimitBatcher gives its callers, as an unbatched CheckLimit would fail.

/** The typed error a CheckLimit call would have failed with, from a check's ItemError. */
export function itemError(e: ItemError): QuotaCallError {
  const metadata = new Metadata();
  // Metadata takes printable ASCII only (it throws on anything else); this server's field paths
  // are, but an answer from elsewhere must still reach its caller as an error.
  if (e.field)
    metadata.set('invalid-field', /^[ -~]*$/.test(e.field) ? e.field : encodeURI(e.field));
  if (e.retryAfter) {
    const ms = Math.ceil(Number(e.retryAfter.seconds) * 1000 + e.retryAfter.nanos / 1e6);
    // Both, as the server sends them for a single call (toStatus.ts's retryMetadata).
    metadata.set('grpc-retry-pushback-ms', String(ms));
    metadata.set('retry-after-ms', String(ms));
  }
  return callError(e.code, e.message, metadata);
}

/** A caller's deadline passed before its batch answered (or before it was sent). */
export function deadlineError(deadlineMs: number): QuotaCallError {
  return callError(
    status.DEADLINE_EXCEEDED,
    `Deadline exceeded after ${(deadlineMs / 1000).toFixed(3)}s, waiting for its CheckLimits batch`,
  );
}

export function closedError(): QuotaCallError {
  return callError(status.CANCELLED, 'connection closed before the call was sent');
}

/** The typed error of a status made here, shaped as grpc-js shapes a call's. */
export function callError(
  code: number,
  details: string,
  metadata = new Metadata(),
): QuotaCallError {
  const err = Object.assign(new Error(`${code} ${status[code] ?? ''}: ${details}`), {
    code,
    details,
    metadata,
  }) as ServiceError;
  return toQuotaError(err);
}
