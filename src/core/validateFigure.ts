import { ValidationError } from '../errors.js';

/** The smallest positive normal double; below it (bar 0) a double is subnormal. */
export const MIN_NORMAL = 2 ** -1022;

/**
 * Throws ValidationError naming `field` unless `value` is finite and either 0 or a normal
 * double. A subnormal figure (5e-324) stores fine, but PostgreSQL raises "value out of range:
 * underflow" wherever float8 arithmetic on it rounds to zero (a mean, a product), so one such
 * row would fail every aggregate over it. Range checks are the caller's.
 */
export function validateFigure(value: number, field: string): number {
  if (!Number.isFinite(value))
    throw new ValidationError(field, `must be a finite number, got ${value}`);
  if (value !== 0 && Math.abs(value) < MIN_NORMAL) {
    throw new ValidationError(
      field,
      `must be 0 or at least 2^-1022 in magnitude (a normal double), got ${value}`,
    );
  }
  return value;
}
