import { randomUUID } from 'node:crypto';
import type {
  CheckCommandQuotaResponse,
  CheckLimitResponse,
  QuotaServiceServer,
} from '../clients/typescript/src/gen/quota/v1/quota_service.js';
import { Period, Scope } from '../clients/typescript/src/gen/quota/v1/types.js';
import { handleUnary } from '../src/grpc/handleUnary.js';
import type { HandlerDeps } from '../src/grpc/HandlerDeps.js';
import { QUOTA_SERVICE } from '../src/grpc/services.js';

/** What the bench's rate-limit rule answers: allowed, one applied limit, as the service does. */
function allowed(key: string): CheckLimitResponse {
  return {
    allowed: true,
    limits: [
      {
        rule: 'bench-user',
        scope: Scope.SCOPE_USER,
        key,
        limit: 1_000_000_000,
        remaining: 999_999_999,
        window: { seconds: 60, nanos: 0 },
        resetAfter: { seconds: 59, nanos: 250_000_000 },
        shadow: false,
        exceeded: false,
      },
    ],
    retryAfter: undefined,
    degraded: false,
    throttleFactor: 1,
  };
}

const DAY_MS = 86_400_000;

/** What the default shell rule answers a user with a few commands counted: three periods. */
function admitted(): CheckCommandQuotaResponse {
  const usage = (period: Period, limit: number, resetsInMs: number) => ({
    period,
    limit,
    unlimited: false,
    used: 3,
    remaining: limit - 3,
    resetsAt: new Date(Math.ceil(Date.now() / DAY_MS) * DAY_MS + resetsInMs),
  });
  return {
    allowed: true,
    reason: '',
    periods: [
      usage(Period.PERIOD_DAILY, 500, 0),
      usage(Period.PERIOD_WEEKLY, 3000, 3 * DAY_MS),
      usage(Period.PERIOD_MONTHLY, 10000, 20 * DAY_MS),
    ],
    tier: 'default',
    throttleFactor: 1,
    delay: { seconds: 0, nanos: 0 },
    reservationId: RESERVATION_ID,
    degraded: false,
  };
}

/** One reservation id for every answer: the no-op RecordExecution reads none. */
const RESERVATION_ID = randomUUID();
const EXECUTION_ID = randomUUID();

/**
 * The no-op baseline's decision methods: CheckLimit, CheckLimits, CheckCommandQuota and
 * RecordExecution answer a fixed answer of the service's size and shape (a CheckLimit answer
 * names the caller's key, as the service's does) without the domain or the database, through
 * the same adapter and middleware chain (`deps`) as the service's handlers.
 */
export function noopHandlers(
  deps: HandlerDeps,
): Pick<
  QuotaServiceServer,
  'checkLimit' | 'checkLimits' | 'checkCommandQuota' | 'recordExecution'
> {
  return {
    checkLimit: handleUnary(QUOTA_SERVICE, 'CheckLimit', deps, async (req) => allowed(req.userId)),
    checkLimits: handleUnary(QUOTA_SERVICE, 'CheckLimits', deps, async (req) => ({
      results: req.checks.map((check) => ({
        result: { $case: 'response' as const, value: allowed(check.userId) },
      })),
    })),
    checkCommandQuota: handleUnary(QUOTA_SERVICE, 'CheckCommandQuota', deps, async () =>
      admitted(),
    ),
    recordExecution: handleUnary(QUOTA_SERVICE, 'RecordExecution', deps, async () => ({
      executionId: EXECUTION_ID,
    })),
  };
}
