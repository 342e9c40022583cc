import { Metadata, status } from '@grpc/grpc-js';
import type { StatusObject } from '@grpc/grpc-js';
import {
  NotFoundError,
  OverloadedError,
  PreconditionError,
  RejectedInputError,
  StoreNotMigratedError,
  StoreUnavailableError,
  ValidationError,
} from '../errors.js';

/** A status an RPC fails with; `internal` errors are logged with their stack by the caller. */
export interface MappedStatus extends Partial<StatusObject> {
  code: status;
  details: string;
  internal: boolean;
}

/**
 * The one error boundary: domain errors become statuses, anything else INTERNAL with a fixed
 * message so that no internals reach callers. A storage outage is UNAVAILABLE, which clients
 * may retry; a decision RPC never gets here for an outage, it answers the failure mode instead.
 * The service's own backlog is RESOURCE_EXHAUSTED with a retry hint, never the failure mode.
 */
export function toStatus(err: unknown): MappedStatus {
  if (err instanceof ValidationError) {
    return {
      code: status.INVALID_ARGUMENT,
      details: err.message,
      internal: false,
      metadata: fieldMetadata(err.field),
    };
  }
  if (err instanceof RejectedInputError) {
    return { code: status.INVALID_ARGUMENT, details: err.message, internal: false };
  }
  if (err instanceof NotFoundError)
    return { code: status.NOT_FOUND, details: err.message, internal: false };
  if (err instanceof PreconditionError)
    return { code: status.FAILED_PRECONDITION, details: err.message, internal: false };
  if (err instanceof OverloadedError) {
    // The service's own backlog, not an outage: the caller is told when to come back.
    return {
      code: status.RESOURCE_EXHAUSTED,
      details: err.message,
      internal: false,
      metadata: retryMetadata(err.retryAfterMs),
    };
  }
  if (err instanceof StoreNotMigratedError) {
    return {
      code: status.UNAVAILABLE,
      details: 'storage not migrated for this version; retry after migration',
      internal: false,
    };
  }
  if (err instanceof StoreUnavailableError) {
    return {
      code: status.UNAVAILABLE,
      details: 'storage unavailable; retry later',
      internal: false,
    };
  }
  if (isStatusError(err)) return { code: err.code, details: err.details ?? '', internal: false };
  return { code: status.INTERNAL, details: 'internal error', internal: true };
}

/** Errors thrown with an explicit gRPC code (auth checks, unimplemented methods). */
export class StatusError extends Error {
  constructor(
    readonly code: status,
    readonly details: string,
  ) {
    super(details);
    this.name = 'StatusError';
  }
}

function isStatusError(err: unknown): err is StatusError {
  return err instanceof StatusError;
}

/**
 * `grpc-retry-pushback-ms` is the header gRPC clients' retry policies honour; `retry-after-ms`
 * says the same to clients that read their own metadata.
 */
function retryMetadata(retryAfterMs: number): Metadata {
  const ms = String(Math.max(1, Math.ceil(retryAfterMs)));
  const md = new Metadata();
  md.set('grpc-retry-pushback-ms', ms);
  md.set('retry-after-ms', ms);
  return md;
}

function fieldMetadata(field: string): Metadata {
  const md = new Metadata();
  md.set('invalid-field', field);
  return md;
}
