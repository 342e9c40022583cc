import type { CheckItem } from '../limits/LimitService.js';
import type { CheckLimitResult as DomainResult } from '../limits/types.js';
import type {
  CheckLimitsRequest,
  CheckLimitsResponse,
  ItemError,
} from '../../clients/typescript/src/gen/quota/v1/quota_service.js';
import { checkLimitFromProto, checkLimitToProto } from './checkLimitMapping.js';
import { toDuration } from './durations.js';
import { decodedItem } from './guardDeserialization.js';
import { toStatus } from './toStatus.js';

/** Each check as CheckLimit maps it; one that did not decode is its ValidationError. */
export function checkLimitsFromProto(req: CheckLimitsRequest): CheckItem[] {
  return req.checks.map((check) => {
    const item = decodedItem(check);
    return item instanceof Error ? item : checkLimitFromProto(item);
  });
}

/** Told of a check answered with an error: its status code, and whether it is a bug. */
export type ItemFailed = (err: unknown, code: number, internal: boolean) => void;

/**
 * Each result as CheckLimit would answer it, or its error as CheckLimit would fail with it
 * (through the one boundary, toStatus); `failed` is told of each error, to count and log.
 */
export function checkLimitsToProto(
  results: readonly PromiseSettledResult<DomainResult>[],
  failed: ItemFailed,
): CheckLimitsResponse {
  return {
    results: results.map((r) =>
      r.status === 'fulfilled'
        ? { result: { $case: 'response', value: checkLimitToProto(r.value) } }
        : { result: { $case: 'error', value: itemError(r.reason, failed) } },
    ),
  };
}

function itemError(err: unknown, failed: ItemFailed): ItemError {
  const mapped = toStatus(err);
  failed(err, mapped.code, mapped.internal);
  const field = mapped.metadata?.get('invalid-field')[0];
  const retryAfterMs = mapped.metadata?.get('retry-after-ms')[0];
  return {
    code: mapped.code,
    message: mapped.details,
    field: typeof field === 'string' ? field : '',
    retryAfter: typeof retryAfterMs === 'string' ? toDuration(Number(retryAfterMs)) : undefined,
  };
}
