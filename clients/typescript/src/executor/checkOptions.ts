import type { RunOptions } from './RunOptions.js';

/**
 * The longest delay a Node timer takes: a longer one fires after 1 ms instead (with only a
 * TimeoutOverflowWarning), so a timeout of "30 days" would kill a command at once.
 */
export const MAX_TIMER_MS = 2_147_483_647;

/** CheckCommandQuota's bounds of `cost`. */
const MAX_COST = 1000;

/**
 * `value` as a timer's milliseconds, from above 0 (or from 0 with `allowZero`) to
 * {@link MAX_TIMER_MS}; else a TypeError (not a number) or RangeError naming the option.
 */
export function timerMs(value: unknown, name: string, allowZero = false): number {
  if (typeof value !== 'number')
    throw new TypeError(`${name} must be a number of milliseconds, got ${describe(value)}`);
  if (!(allowZero ? value >= 0 : value > 0) || !(value <= MAX_TIMER_MS))
    throw new RangeError(
      `${name} must be ${allowZero ? 'from 0' : 'above 0'} to ${MAX_TIMER_MS} milliseconds ` +
        `(Node's longest timer, about 24.8 days), got ${value}`,
    );
  return value;
}

/** A run's options checked and copied once, before any quota is asked for. */
export interface CheckedRunOptions {
  /** RunOptions.cost, 1 when not given. */
  readonly cost: number;
  /** RunOptions.signal; undefined: never cancelled. */
  readonly signal: AbortSignal | undefined;
  /** RunOptions.timeoutMs; undefined: no timeout. */
  readonly timeoutMs: number | undefined;
}

export function checkRunOptions(options: unknown): CheckedRunOptions {
  if (options === undefined) return { cost: 1, signal: undefined, timeoutMs: undefined };
  if (typeof options !== 'object' || options === null)
    throw new TypeError(`run: options must be an object, got ${describe(options)}`);
  const { cost, signal, timeoutMs } = options as RunOptions;
  if (cost !== undefined && (typeof cost !== 'number' || !Number.isInteger(cost)))
    throw new TypeError(`cost must be a whole number of units, got ${describe(cost)}`);
  if (cost !== undefined && (cost < 1 || cost > MAX_COST))
    throw new RangeError(`cost must be from 1 to ${MAX_COST} units, got ${cost}`);
  if (signal !== undefined && !isAbortSignal(signal))
    throw new TypeError(`signal must be an AbortSignal, got ${describe(signal)}`);
  return {
    cost: cost ?? 1,
    signal,
    timeoutMs: timeoutMs === undefined ? undefined : timerMs(timeoutMs, 'timeoutMs'),
  };
}

/** By its shape: an AbortSignal of another realm or a polyfill's fails `instanceof`. */
function isAbortSignal(value: unknown): value is AbortSignal {
  const s = value as Partial<AbortSignal> | null;
  return (
    typeof s === 'object' &&
    s !== null &&
    typeof s.aborted === 'boolean' &&
    typeof s.addEventListener === 'function' &&
    typeof s.removeEventListener === 'function' &&
    typeof s.throwIfAborted === 'function'
  );
}

/** A value as an error message shows it: strings quoted, objects by their type. */
export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === null || typeof value !== 'object') return String(value);
  return Array.isArray(value) ? 'an array' : `an object (${value.constructor?.name ?? 'null'})`;
}
