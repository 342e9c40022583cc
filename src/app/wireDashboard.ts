// STUB: replaced by the dashboard work.
import type { AuditReports } from '../audit/types.js';
import type { HandlerDeps } from '../grpc/HandlerDeps.js';
import type { LoadAdmin } from '../load/LoadAdmin.js';
import type { Logger } from '../log.js';
import type { Database } from '../store/Database.js';
import type { AdminServiceServer } from '../../clients/typescript/src/gen/quota/v1/admin_service.js';
import { wire } from './Capability.js';

export function wireDashboard(
  logger: Logger,
  _db: Database,
  _sources: { load: LoadAdmin; audit: AuditReports; quotas: unknown },
  _deps: HandlerDeps,
) {
  return wire(logger, async () => ({
    handlers: { admin: <Pick<AdminServiceServer, 'getDashboard'>>{} },
    jobs: [],
    health: [],
  }));
}
