import type { CheckCommandQuotaResponse } from '../gen/quota/v1/quota_service.js';
import { CommandDeniedError } from './CommandDeniedError.js';

/**
 * The executor's host is too loaded to run anything (reason `SYSTEM_OVERLOADED`: its throttle
 * factor is 0). Nothing was consumed; the factor rises again as the host's load reports fall.
 */
export class SystemOverloadedError extends CommandDeniedError {
  /** The host's throttle factor in [0, 1] (0 for this reason). */
  readonly throttleFactor: number;
  /** The host the server judged. */
  readonly host: string;

  constructor(
    decision: CheckCommandQuotaResponse,
    request: { readonly userId: string; readonly commandType: string; readonly host: string },
  ) {
    super(
      `host "${request.host}" is overloaded (throttle factor ${decision.throttleFactor})`,
      decision,
      request,
    );
    this.throttleFactor = decision.throttleFactor;
    this.host = request.host;
  }
}
