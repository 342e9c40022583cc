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
