import { describe, expectTypeOf, it } from 'vitest';
import type { ClientReadableStream } from '@grpc/grpc-js';
import type { QuotaConnection } from '../../clients/typescript/src/index.js';
import type {
  CheckLimitResponse,
  LoadSnapshot,
} from '../../clients/typescript/src/gen/quota/v1/quota_service.js';

describe('client types', () => {
  it('return promises for unary methods and streams for server streams', () => {
    expectTypeOf<ReturnType<QuotaConnection['quota']['checkLimit']>>().toEqualTypeOf<
      Promise<CheckLimitResponse>
    >();
    expectTypeOf<ReturnType<QuotaConnection['quota']['watchLoad']>>().toEqualTypeOf<
      ClientReadableStream<LoadSnapshot>
    >();
  });
});
