export {
  connect,
  QuotaCallError,
  type ConnectOptions,
  type Promisified,
  type QuotaConnection,
} from './connect.js';
// Namespaces, because each generated file also exports its own helper types of the same names.
export * as quotaV1 from './gen/quota/v1/quota_service.js';
export * as adminV1 from './gen/quota/v1/admin_service.js';
export * as typesV1 from './gen/quota/v1/types.js';
export { Algorithm, Period, Scope, RateLimitRule, LimitStatus } from './gen/quota/v1/types.js';
