// RateLimit header fields (draft-ietf-httpapi-ratelimit-headers-11) and HTTP middleware.
export {
  rateLimitHeaders,
  type PartitionKeyFunction,
  type RateLimitHeaderFields,
  type RateLimitHeaderOptions,
} from './rateLimitHeaders.js';
export { hmacPartitionKey } from './hmacPartitionKey.js';
export {
  parseRateLimit,
  parseRateLimitPolicy,
  type QuotaPolicy,
  type ServiceLimit,
} from './parseRateLimitFields.js';
export {
  parseSfList,
  type SfBareItem,
  type SfInnerList,
  type SfItem,
  type SfParameters,
} from './parseSfList.js';
export { limitRequestFromHttp, type LimitRequestFromHttpOptions } from './limitRequestFromHttp.js';
export { createRateLimitGate, type RateLimitGate } from './rateLimitGate.js';
export type { CheckLimitClient, RateLimitOptions } from './rateLimitOptions.js';
export { RateLimitGateError } from './rateLimitGateError.js';
export { withRateLimit } from './withRateLimit.js';
export { rateLimitMiddleware } from './rateLimitMiddleware.js';
