import { status } from '@grpc/grpc-js';
import { expect } from 'vitest';
import type { RawAnswer, RawClient } from './rawClient.js';

/**
 * Sends `body` to `path` raw and expects INVALID_ARGUMENT naming `field`, with `written` (a
 * snapshot of what the database holds) the same after as before: nothing was written.
 */
export async function expectRefused(
  raw: RawClient,
  written: () => Promise<unknown>,
  path: string,
  body: Buffer,
  field: string,
): Promise<RawAnswer> {
  const before = await written();
  const answer = await raw.unary(path, body);
  expect({ code: status[answer.code], field: answer.field }, answer.details).toEqual({
    code: 'INVALID_ARGUMENT',
    field,
  });
  expect(await written()).toEqual(before);
  return answer;
}
