import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { itemError } from '../../clients/typescript/src/batchErrors.js';
import { QuotaInvalidArgumentError } from '../../clients/typescript/src/errors.js';
import { ItemError } from '../../clients/typescript/src/gen/quota/v1/quota_service.js';

// A check's own error, as CheckLimits answers it, becomes the error a single call would give.

describe('itemError', () => {
  it('names the field of an INVALID_ARGUMENT item, as the trailer of a single call does', () => {
    const err = itemError(
      ItemError.fromPartial({
        code: status.INVALID_ARGUMENT,
        message: 'user_id: bad',
        field: 'user_id',
      }),
    );
    expect(err).toBeInstanceOf(QuotaInvalidArgumentError);
    expect((err as QuotaInvalidArgumentError).field).toBe('user_id');
  });

  it('still gives an error for a field that is not printable ASCII (gRPC metadata refuses it)', () => {
    const err = itemError(
      ItemError.fromPartial({
        code: status.INVALID_ARGUMENT,
        message: 'bad',
        field: 'naïve\nname',
      }),
    );
    expect(err).toBeInstanceOf(QuotaInvalidArgumentError);
    expect((err as QuotaInvalidArgumentError).field).toBe('na%C3%AFve%0Aname');
  });
});
