import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { OverloadedError, RejectedInputError } from '../../src/errors.js';
import { toStatus } from '../../src/grpc/toStatus.js';

describe('toStatus', () => {
  it('answers the service overloaded RESOURCE_EXHAUSTED with a retry hint in the trailers', () => {
    const mapped = toStatus(new OverloadedError(249.2));
    expect(mapped).toMatchObject({ code: status.RESOURCE_EXHAUSTED, internal: false });
    expect(mapped.details).toContain('retry later');
    expect(mapped.metadata?.get('grpc-retry-pushback-ms')).toEqual(['250']);
    expect(mapped.metadata?.get('retry-after-ms')).toEqual(['250']);
  });

  it('answers a value the store refused INVALID_ARGUMENT, saying the field is not known', () => {
    const mapped = toStatus(
      new RejectedInputError('invalid byte sequence for encoding "UTF8": 0x00'),
    );
    expect(mapped).toMatchObject({ code: status.INVALID_ARGUMENT, internal: false });
    expect(mapped.details).toContain('field not known here');
    expect(mapped.details).toContain('0x00');
  });
});
