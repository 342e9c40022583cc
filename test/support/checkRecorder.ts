import { InterceptingCall, type Interceptor } from '@grpc/grpc-js';
import { connect, type ConnectOptions, type QuotaConnection } from '@quota-authority/client';
import type { CheckLimitRequest } from '../../clients/typescript/src/gen/quota/v1/quota_service.js';
import { TEST_ADMIN_TOKEN } from './tokens.js';

/** A call a client sent: its method, and its checks (one for CheckLimit, all of CheckLimits). */
export interface RecordedCall {
  method: string;
  /** Each check's request_id, or its user_id when it has none. */
  checks: string[];
}

/**
 * A client interceptor that records each call's method and checks as it is sent; with `hold`,
 * a CheckLimits call goes out only after `release()` (its deadline already running).
 */
export function checkRecorder(hold = false): {
  calls: RecordedCall[];
  interceptor: Interceptor;
  release: () => void;
} {
  const calls: RecordedCall[] = [];
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const interceptor: Interceptor = (options, nextCall) =>
    new InterceptingCall(nextCall(options), {
      sendMessage: (message: unknown, next) => {
        const m = message as { checks?: CheckLimitRequest[] } & CheckLimitRequest;
        const method = options.method_definition.path.split('/')[2]!;
        calls.push({ method, checks: (m.checks ?? [m]).map((c) => c.requestId || c.userId) });
        if (hold && method === 'CheckLimits') void released.then(() => next(message));
        else next(message);
      },
    });
  return { calls, interceptor, release };
}

/** A connection to `address` (with TEST_ADMIN_TOKEN) whose calls `recorder` records. */
export function recordedConnection(
  address: string,
  recorder: { readonly interceptor: Interceptor },
  more: Partial<ConnectOptions> = {},
): QuotaConnection {
  return connect({
    address,
    token: TEST_ADMIN_TOKEN,
    channelOptions: { interceptors: [recorder.interceptor] },
    ...more,
  });
}
