import { status } from '@grpc/grpc-js';
import type { QuotaServiceServer } from '../../clients/typescript/src/gen/quota/v1/quota_service.js';
import { handleUnary } from './handleUnary.js';
import type { HandlerDeps } from './HandlerDeps.js';
import { QUOTA_SERVICE } from './services.js';
import { StatusError } from './toStatus.js';

/** The command-quota methods, which answer UNIMPLEMENTED until that capability exists. */
export function commandQuotaHandlers(
  deps: HandlerDeps,
): Pick<QuotaServiceServer, 'checkCommandQuota' | 'recordExecution' | 'getQuotaStatus'> {
  const unimplemented = (method: string) =>
    handleUnary(QUOTA_SERVICE, method, deps, async () => {
      throw new StatusError(status.UNIMPLEMENTED, `${method} is not implemented yet`);
    });
  return {
    checkCommandQuota: unimplemented('CheckCommandQuota'),
    recordExecution: unimplemented('RecordExecution'),
    getQuotaStatus: unimplemented('GetQuotaStatus'),
  };
}
