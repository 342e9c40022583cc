import { describe, expect, it } from 'vitest';
import { CheckCommandQuotaResponse } from '../../clients/typescript/src/gen/quota/v1/quota_service.js';
import { Period } from '../../clients/typescript/src/gen/quota/v1/types.js';
import { CommandDeniedError } from '../../clients/typescript/src/executor/CommandDeniedError.js';
import { deniedError } from '../../clients/typescript/src/executor/deniedError.js';
import { QuotaDecisionUnavailableError } from '../../clients/typescript/src/executor/QuotaDecisionUnavailableError.js';
import {
  exceededPeriods,
  QuotaExceededError,
} from '../../clients/typescript/src/executor/QuotaExceededError.js';
import { SystemOverloadedError } from '../../clients/typescript/src/executor/SystemOverloadedError.js';
import { abortableDelay } from '../../clients/typescript/src/executor/abortableDelay.js';
import { durationToMs, msToDuration } from '../../clients/typescript/src/executor/durations.js';

const request = { userId: 'u', commandType: 'shell', host: 'h' };
const usage = (period: Period, used: number, resetsAt: string) => ({
  period,
  limit: 2,
  unlimited: false,
  used,
  remaining: 2 - used,
  resetsAt: new Date(resetsAt),
});
const denial = (reason: string, extra: Partial<CheckCommandQuotaResponse> = {}) =>
  CheckCommandQuotaResponse.fromPartial({ allowed: false, reason, tier: 'default', ...extra });

describe('denials', () => {
  it('reads the period names of a QUOTA_EXCEEDED reason', () => {
    expect(exceededPeriods('QUOTA_EXCEEDED: daily')).toEqual(['daily']);
    expect(exceededPeriods('QUOTA_EXCEEDED: weekly, monthly')).toEqual(['weekly', 'monthly']);
    expect(exceededPeriods('QUOTA_EXCEEDED')).toEqual([]);
  });

  it('QUOTA_EXCEEDED carries the periods, and retryAt is the last reset of the exhausted ones', () => {
    const err = deniedError(
      denial('QUOTA_EXCEEDED: daily, weekly', {
        periods: [
          usage(Period.PERIOD_DAILY, 2, '2031-03-13T00:00:00Z'),
          usage(Period.PERIOD_WEEKLY, 2, '2031-03-17T00:00:00Z'),
          usage(Period.PERIOD_MONTHLY, 1, '2031-04-01T00:00:00Z'),
        ],
      }),
      request,
    ) as QuotaExceededError;
    expect(err).toBeInstanceOf(QuotaExceededError);
    expect(err).toBeInstanceOf(CommandDeniedError);
    expect(err.name).toBe('QuotaExceededError');
    expect(err.exceeded).toEqual(['daily', 'weekly']);
    expect(err.periods.map((p) => [p.period, p.used, p.remaining])).toEqual([
      ['daily', 2, 0],
      ['weekly', 2, 0],
      ['monthly', 1, 1],
    ]);
    expect(err.retryAt).toEqual(new Date('2031-03-17T00:00:00Z'));
    expect(err.message).toContain('2031-03-17T00:00:00.000Z');
  });

  it('maps SYSTEM_OVERLOADED, QUOTA_UNAVAILABLE and unknown reasons', () => {
    const overloaded = deniedError(denial('SYSTEM_OVERLOADED', { throttleFactor: 0 }), request);
    expect(overloaded).toBeInstanceOf(SystemOverloadedError);
    expect(overloaded).toMatchObject({ throttleFactor: 0, host: 'h', userId: 'u' });
    const degraded = deniedError(denial('QUOTA_UNAVAILABLE', { degraded: true }), request);
    expect(degraded).toBeInstanceOf(QuotaDecisionUnavailableError);
    expect(degraded.decision.degraded).toBe(true);
    const other = deniedError(denial('SOMETHING_NEW'), request);
    expect(other.constructor).toBe(CommandDeniedError);
    expect(other.reason).toBe('SOMETHING_NEW');
  });
});

describe('delays', () => {
  it('converts milliseconds to Durations and back, to the nanosecond', () => {
    expect(msToDuration(1234.5678)).toEqual({ seconds: 1, nanos: 234_567_800 });
    expect(msToDuration(-5)).toEqual({ seconds: 0, nanos: 0 });
    expect(durationToMs({ seconds: 0, nanos: 400_000_000 })).toBe(400);
    expect(durationToMs(undefined)).toBe(0);
  });

  it('waits the whole delay by performance.now(), and rejects with the reason on abort', async () => {
    const t0 = performance.now();
    await abortableDelay(30, undefined);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(30);
    const c = new AbortController();
    setTimeout(() => c.abort('stop'), 10);
    await expect(abortableDelay(10_000, c.signal)).rejects.toBe('stop');
    await expect(abortableDelay(0, AbortSignal.abort('before'))).rejects.toBe('before');
  });
});
