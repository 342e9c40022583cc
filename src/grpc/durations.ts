import type { Duration } from '../../clients/typescript/src/gen/google/protobuf/duration.js';

/** Milliseconds → google.protobuf.Duration. */
export function toDuration(ms: number): Duration {
  const seconds = Math.floor(ms / 1000);
  return { seconds, nanos: Math.round((ms - seconds * 1000) * 1e6) };
}

/** google.protobuf.Duration → milliseconds; undefined stays undefined. */
export function fromDuration(d: Duration | undefined): number | undefined {
  if (!d) return undefined;
  return Number(d.seconds) * 1000 + d.nanos / 1e6;
}
