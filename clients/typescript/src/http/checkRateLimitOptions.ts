import { connectivityState } from '@grpc/grpc-js';
import type { QuotaConnection } from '../connect.js';
import { checkTrustProxyHops } from './limitRequestFromHttp.js';
import type { CheckLimitClient, RateLimitOptions } from './rateLimitOptions.js';

/** Node's timers take at most 2^31-1 ms; a longer deadline would fire at once. */
const MAX_INT32 = 2_147_483_647;

/** The options with their defaults, checked once, when the middleware is made. */
export interface GateConfig {
  readonly client: CheckLimitClient;
  /** Whether the quota service's channel is connected; undefined when it is not known. */
  readonly connected: () => boolean | undefined;
  readonly deadlineMs: number;
  readonly maxInFlight: number;
  readonly failureMode: 'open' | 'closed';
  readonly trustProxyHops: number;
}

/**
 * The options checked: TypeError or RangeError naming the first bad one, so that a mistake
 * fails at startup rather than turning every decision into a failure.
 */
export function checkRateLimitOptions(options: RateLimitOptions): GateConfig {
  if (typeof options !== 'object' || options === null)
    throw new TypeError('rate limit options must be an object with a client');
  for (const name of ['request', 'resource', 'requestId', 'onError', 'onDegraded'] as const)
    if (options[name] !== undefined && typeof options[name] !== 'function')
      throw new TypeError(`${name} must be a function, got ${typeof options[name]}`);
  const failureMode = options.failureMode ?? 'open';
  if (failureMode !== 'open' && failureMode !== 'closed')
    throw new RangeError(`failureMode must be 'open' or 'closed', got ${String(failureMode)}`);
  return {
    ...clientOf(options.client),
    deadlineMs: wholeNumber(options.deadlineMs ?? 1000, 'deadlineMs'),
    maxInFlight: wholeNumber(options.maxInFlight ?? 256, 'maxInFlight'),
    failureMode,
    trustProxyHops: checkTrustProxyHops(options.trustProxyHops ?? 0),
  };
}

function wholeNumber(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 1 || value > MAX_INT32)
    throw new RangeError(`${name} must be a whole number from 1 to ${MAX_INT32}, got ${value}`);
  return value;
}

function clientOf(
  client: QuotaConnection | CheckLimitClient,
): Pick<GateConfig, 'client' | 'connected'> {
  const c = client as Partial<QuotaConnection & CheckLimitClient> | undefined;
  if (typeof c?.quota?.checkLimit === 'function') {
    const channel = c.raw?.quota?.getChannel?.();
    return {
      client: c.quota,
      // READY: the channel has a live connection (false: do not start connecting for this).
      connected: channel
        ? () => channel.getConnectivityState(false) === connectivityState.READY
        : () => undefined,
    };
  }
  if (typeof c?.checkLimit === 'function')
    return { client: c as CheckLimitClient, connected: () => undefined };
  throw new TypeError('client must be a QuotaConnection or have checkLimit(request, options)');
}
