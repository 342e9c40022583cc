import { Metadata, status, type ServiceError } from '@grpc/grpc-js';

/**
 * A call the server refused or could not answer: the gRPC status code and details, with the
 * grpc-js error as `cause`. Subclasses name the codes a caller handles differently.
 */
export class QuotaCallError extends Error {
  /** gRPC status code (`status` of `@grpc/grpc-js`). */
  readonly code: number;
  /** The server's message, without the `N CODE:` prefix. */
  readonly details: string;
  /** Trailing metadata of the failed call. */
  readonly metadata: Metadata;
  constructor(err: ServiceError) {
    super(err.message, { cause: err });
    this.name = new.target.name;
    this.code = err.code;
    this.details = err.details;
    this.metadata = err.metadata ?? new Metadata();
  }
}

/** UNAVAILABLE: no server could be reached, or the connection dropped. Safe to retry with a request_id. */
export class QuotaUnavailableError extends QuotaCallError {}

/** DEADLINE_EXCEEDED: no answer within the call's deadline. The call may still have been decided. */
export class QuotaDeadlineExceededError extends QuotaCallError {}

/** INVALID_ARGUMENT: the request is malformed; `field` names the offending field when the server did. */
export class QuotaInvalidArgumentError extends QuotaCallError {
  /** The request field the server named (`user_id`, `rule.name`, …), or undefined. */
  readonly field: string | undefined;
  constructor(err: ServiceError) {
    super(err);
    // The server names it in the `invalid-field` trailer; its details read "<field>: <reason>".
    const trailer = this.metadata.get('invalid-field')[0];
    this.field =
      typeof trailer === 'string'
        ? trailer
        : /^([a-z_][a-z0-9_|.]*(?:\[\d+\][a-z0-9_.]*)*): /.exec(err.details ?? '')?.[1];
  }
}

/** UNAUTHENTICATED: no token, or one the server does not know (or revoked). */
export class QuotaUnauthenticatedError extends QuotaCallError {}

/** PERMISSION_DENIED: the token's role may not call this method. */
export class QuotaPermissionDeniedError extends QuotaCallError {}

/** NOT_FOUND: the rule, tier, token, reservation or task named does not exist. */
export class QuotaNotFoundError extends QuotaCallError {}

/** RESOURCE_EXHAUSTED: the server shed the call under its own backlog; nothing was decided. */
export class QuotaResourceExhaustedError extends QuotaCallError {}

/** FAILED_PRECONDITION: the state does not allow the call now (e.g. a task already running). */
export class QuotaFailedPreconditionError extends QuotaCallError {}

/** CANCELLED: the caller (or its signal) cancelled the call. */
export class QuotaCancelledError extends QuotaCallError {}

const BY_CODE: Partial<Record<number, new (err: ServiceError) => QuotaCallError>> = {
  [status.UNAVAILABLE]: QuotaUnavailableError,
  [status.DEADLINE_EXCEEDED]: QuotaDeadlineExceededError,
  [status.INVALID_ARGUMENT]: QuotaInvalidArgumentError,
  [status.UNAUTHENTICATED]: QuotaUnauthenticatedError,
  [status.PERMISSION_DENIED]: QuotaPermissionDeniedError,
  [status.NOT_FOUND]: QuotaNotFoundError,
  [status.RESOURCE_EXHAUSTED]: QuotaResourceExhaustedError,
  [status.FAILED_PRECONDITION]: QuotaFailedPreconditionError,
  [status.CANCELLED]: QuotaCancelledError,
};

/** The typed error of a grpc-js call error. */
export function toQuotaError(err: ServiceError): QuotaCallError {
  const Type = BY_CODE[err.code] ?? QuotaCallError;
  return new Type(err);
}
