import type { CheckCommandQuotaResponse } from '../gen/quota/v1/quota_service.js';

/**
 * CheckCommandQuota did not admit a command, so {@link QuotaExecutor.run} did not run it and
 * nothing was consumed. A denial is the server's answer, not a failed call: subclasses name the
 * reasons a caller handles differently; a reason this client does not know gives this class.
 */
export class CommandDeniedError extends Error {
  /** The server's reason, e.g. `QUOTA_EXCEEDED: daily` or `SYSTEM_OVERLOADED`. */
  readonly reason: string;
  readonly userId: string;
  readonly commandType: string;
  /** The whole answer. */
  readonly decision: CheckCommandQuotaResponse;

  constructor(
    message: string,
    decision: CheckCommandQuotaResponse,
    request: { readonly userId: string; readonly commandType: string },
  ) {
    super(message);
    this.name = new.target.name;
    this.reason = decision.reason;
    this.userId = request.userId;
    this.commandType = request.commandType;
    this.decision = decision;
  }
}
