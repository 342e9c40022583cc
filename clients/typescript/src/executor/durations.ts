import type { Duration } from '../gen/google/protobuf/duration.js';

/** A protobuf Duration in milliseconds; 0 when unset. */
export function durationToMs(d: Duration | undefined): number {
  return d ? d.seconds * 1000 + d.nanos / 1e6 : 0;
}

/** Non-negative milliseconds as a protobuf Duration, to the nanosecond. */
export function msToDuration(ms: number): Duration {
  const total = Math.max(0, Math.round(ms * 1e6));
  return { seconds: Math.floor(total / 1e9), nanos: total % 1e9 };
}
