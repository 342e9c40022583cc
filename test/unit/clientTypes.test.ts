import { describe, expectTypeOf, it } from 'vitest';
import type { QuotaConnection, QuotaStream } from '@quota-authority/client';
import type {
  CheckLimitResponse,
  LoadSnapshot,
} from '../../clients/typescript/src/gen/quota/v1/quota_service.js';

describe('client types', () => {
  it('return promises for unary methods and async-iterable streams for server streams', () => {
    expectTypeOf<ReturnType<QuotaConnection['quota']['checkLimit']>>().toEqualTypeOf<
      Promise<CheckLimitResponse>
    >();
    expectTypeOf<ReturnType<QuotaConnection['quota']['watchLoad']>>().toEqualTypeOf<
      QuotaStream<LoadSnapshot>
    >();
  });
});
