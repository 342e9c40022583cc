import type { Duration } from '../gen/google/protobuf/duration.js';

/**
 * Whole seconds of `duration`, rounded up: the RateLimit fields and Retry-After carry
 * delay-seconds, and rounding down would tell a client to come back before it may. Negative
 * spans are 0; undefined stays undefined (the field was not set).
 */
export function ceilSeconds(duration: Duration | undefined): number | undefined {
  if (duration === undefined) return undefined;
  const seconds = Number(duration.seconds) || 0;
  const nanos = Number(duration.nanos) || 0;
  // Integer arithmetic: seconds + nanos / 1e9 in floating point can round 1.000000001 to 1.
  const whole = Math.ceil(seconds) + (nanos > 0 && Number.isInteger(seconds) ? 1 : 0);
  return Math.max(0, whole);
}
