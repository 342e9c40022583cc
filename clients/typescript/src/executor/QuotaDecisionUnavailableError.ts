import type { CheckCommandQuotaResponse } from '../gen/quota/v1/quota_service.js';
import { CommandDeniedError } from './CommandDeniedError.js';

/**
 * The server could not decide in time (its database did not answer) and is configured to fail
 * closed (reason `QUOTA_UNAVAILABLE`, `degraded`). Nothing was consumed; a later attempt may be
 * admitted. A server failing open admits instead, and the run's result says `degraded`.
 */
export class QuotaDecisionUnavailableError extends CommandDeniedError {
  constructor(
    decision: CheckCommandQuotaResponse,
    request: { readonly userId: string; readonly commandType: string },
  ) {
    super('the quota authority could not decide in time (failing closed)', decision, request);
  }
}
