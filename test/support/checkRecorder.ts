import { InterceptingCall, type Interceptor } from '@grpc/grpc-js';
import { beforeAll } from 'vitest';
import {
  connect,
  RateLimitRule,
  Scope,
  type ConnectOptions,
  type QuotaConnection,
} from '@quota-authority/client';
import type { CheckLimitRequest } from '../../clients/typescript/src/gen/quota/v1/quota_service.js';
import { useTestServer } from './testServer.js';
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

/**
 * A server of the calling file's own (useTestServer with `env`) whose one rule allows each user
 * 20 CheckLimit calls an hour (`users-20`), and connections to it recorded by a checkRecorder,
 * with `defaults` under each connection's own options: returns what opens one.
 */
export function useRecordedServer(
  env: Record<string, string>,
  defaults: Partial<ConnectOptions> = {},
): (rec: ReturnType<typeof checkRecorder>, more?: Partial<ConnectOptions>) => QuotaConnection {
  const ctx = useTestServer(env);
  beforeAll(async () => {
    await ctx.server.client.admin.upsertRateLimitRule({
      rule: RateLimitRule.fromPartial({
        name: 'users-20',
        scope: Scope.SCOPE_USER,
        match: '*',
        limit: 20,
        window: { seconds: 3600, nanos: 0 },
      }),
    });
  });
  return (rec, more = {}) => recordedConnection(ctx.server.address, rec, { ...defaults, ...more });
}
