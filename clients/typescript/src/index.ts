export {
  connect,
  type CallOptions,
  type ConnectOptions,
  type PartialRequest,
  type Promisified,
  type QuotaConnection,
  type QuotaStream,
  type StreamOptions,
  type TlsOptions,
} from './connect.js';
export type { RetryOptions } from './retryPolicy.js';
export type { BatchingOptions } from './checkLimitBatcher.js';
export {
  QuotaCallError,
  QuotaCancelledError,
  QuotaDeadlineExceededError,
  QuotaFailedPreconditionError,
  QuotaInvalidArgumentError,
  QuotaNotFoundError,
  QuotaPermissionDeniedError,
  QuotaResourceExhaustedError,
  QuotaUnauthenticatedError,
  QuotaUnavailableError,
  toQuotaError,
} from './errors.js';
// Namespaces, because each generated file also exports its own helper types of the same names.
export * as quotaV1 from './gen/quota/v1/quota_service.js';
export * as adminV1 from './gen/quota/v1/admin_service.js';
export * as typesV1 from './gen/quota/v1/types.js';
export {
  CheckCommandQuotaRequest,
  CheckCommandQuotaResponse,
  CheckLimitRequest,
  CheckLimitResponse,
  CheckLimitResult,
  CheckLimitsRequest,
  CheckLimitsResponse,
  GetQuotaStatusRequest,
  GetQuotaStatusResponse,
  ItemError,
  LoadSnapshot,
  PeriodUsage,
  RecordExecutionRequest,
  RecordExecutionResponse,
  ReportLoadRequest,
  ReportLoadResponse,
  WatchLoadRequest,
} from './gen/quota/v1/quota_service.js';
export {
  Algorithm,
  CommandQuotaRule,
  LimitStatus,
  Period,
  RateLimitRule,
  Scope,
} from './gen/quota/v1/types.js';
export * from './executor/index.js';
export * from './http/index.js';
