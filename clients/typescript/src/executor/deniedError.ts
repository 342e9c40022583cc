import type { CheckCommandQuotaResponse } from '../gen/quota/v1/quota_service.js';
import { CommandDeniedError } from './CommandDeniedError.js';
import { QuotaDecisionUnavailableError } from './QuotaDecisionUnavailableError.js';
import { QuotaExceededError } from './QuotaExceededError.js';
import { SystemOverloadedError } from './SystemOverloadedError.js';

/** The typed error of a denial, by its reason. */
export function deniedError(
  decision: CheckCommandQuotaResponse,
  request: { readonly userId: string; readonly commandType: string; readonly host: string },
): CommandDeniedError {
  const kind = decision.reason.split(':')[0]!.trim();
  switch (kind) {
    case 'QUOTA_EXCEEDED':
      return new QuotaExceededError(decision, request);
    case 'SYSTEM_OVERLOADED':
      return new SystemOverloadedError(decision, request);
    case 'QUOTA_UNAVAILABLE':
      return new QuotaDecisionUnavailableError(decision, request);
    default:
      return new CommandDeniedError(
        `command denied: ${decision.reason || '(no reason given)'}`,
        decision,
        request,
      );
  }
}
