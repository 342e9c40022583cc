import { ValidationError } from '../../src/errors.js';

/** The field a ValidationError from `fn` names; undefined when `fn` throws none. */
export function fieldOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof ValidationError) return err.field;
    throw err;
  }
  return undefined;
}
