/**
 * A request the gate refused without a decision of the quota service, as `onError` is told of
 * it: `'maxInFlight'` (that many decisions were pending: answered 503) or
 * `'unknownClientAddress'` (the default `request` found no client IP: answered 500, since
 * counting it by no IP would exempt it from every IP rule).
 */
export class RateLimitGateError extends Error {
  constructor(
    readonly reason: 'maxInFlight' | 'unknownClientAddress',
    message: string,
  ) {
    super(message);
    this.name = 'RateLimitGateError';
  }
}
