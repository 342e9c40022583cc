/**
 * Domain errors. They carry no transport detail: src/grpc/toStatus.ts maps each to a status.
 */

/** Bad input; `field` names the offending request field (proto field path, e.g. "rule.window"). */
export class ValidationError extends Error {
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${field}: ${reason}`);
    this.name = 'ValidationError';
  }
}

/** The named thing does not exist. */
export class NotFoundError extends Error {
  constructor(
    readonly kind: string,
    readonly id: string,
  ) {
    super(`${kind} ${JSON.stringify(id)} not found`);
    this.name = 'NotFoundError';
  }
}

/** The store did not answer in time or cannot be reached. */
export class StoreUnavailableError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}

/**
 * The store did not answer within the time it was given. Unlike the store saying it cannot
 * decide, this alone does not tell an outage from a statement sent late behind this service's
 * own queue: the caller's wait decides which (see BacklogMeter).
 */
export class StoreTimeoutError extends StoreUnavailableError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'StoreTimeoutError';
  }
}

/**
 * The store answers, but without the tables or functions this version needs while migrations
 * are pending (a database not migrated yet, or migrated by an older version). Not an outage,
 * so not the failure mode: a decision cannot be made, and the call is refused (UNAVAILABLE)
 * until `migrate` has run.
 */
export class StoreNotMigratedError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'StoreNotMigratedError';
  }
}

/**
 * The service cannot decide in time while the store answers: its own backlog of decisions is
 * longer than the caller's time allows (a burst on one key, more calls than a replica handles).
 * Not an outage, so not the failure mode: the call is refused and may be retried after
 * `retryAfterMs`.
 */
export class OverloadedError extends Error {
  constructor(
    /** When a retry may find the backlog gone, in ms. */
    readonly retryAfterMs: number,
    message = 'too many decisions waiting; retry later',
  ) {
    super(message);
    this.name = 'OverloadedError';
  }
}

/**
 * The store refused a value of the request as data (PostgreSQL text cannot hold a NUL byte, a
 * number out of range...): the caller's bad input. Which field held it is not known where the
 * store finds it, so none is named.
 */
export class RejectedInputError extends Error {
  constructor(reason: string, options?: ErrorOptions) {
    super(`a value of the request cannot be stored (field not known here): ${reason}`, options);
    this.name = 'RejectedInputError';
  }
}

/**
 * The request names something that exists but is not in a state that allows it (a reservation
 * of another user, one already settled): retrying the same request will not help.
 */
export class PreconditionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PreconditionError';
  }
}
