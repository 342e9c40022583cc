import { ExponentialBackoff, handleWhen, retry, type RetryPolicy } from 'cockatiel';
import { QuotaDeadlineExceededError, QuotaUnavailableError } from './errors.js';

/** Retries of calls that carry a request_id. */
export interface RetryOptions {
  /**
   * Attempts in all, the first included; 1 means no retry.
   * @default 4
   */
  maxAttempts?: number;
  /**
   * Backoff before the first retry, in milliseconds; later ones grow exponentially, with
   * decorrelated jitter so that many clients do not retry in step.
   * @default 50
   */
  initialDelayMs?: number;
  /**
   * Longest backoff between two attempts, in milliseconds.
   * @default 2000
   */
  maxDelayMs?: number;
}

/** Only an unreachable server or a missed deadline is worth another attempt. */
const RETRIABLE = handleWhen(
  (err) => err instanceof QuotaUnavailableError || err instanceof QuotaDeadlineExceededError,
);

export function retryPolicy(options: RetryOptions): RetryPolicy {
  const maxAttempts = options.maxAttempts ?? 4;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1)
    throw new RangeError(`retry.maxAttempts must be an integer of at least 1, got ${maxAttempts}`);
  const initialDelay = options.initialDelayMs ?? 50;
  const maxDelay = options.maxDelayMs ?? 2000;
  if (!(initialDelay >= 0) || !(maxDelay >= initialDelay))
    throw new RangeError('retry delays must satisfy 0 <= initialDelayMs <= maxDelayMs');
  return retry(RETRIABLE, {
    maxAttempts: maxAttempts - 1,
    backoff: new ExponentialBackoff({ initialDelay, maxDelay }),
  });
}
