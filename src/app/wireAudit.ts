// STUB: the audit helper replaces this file.
import type { Config } from '../config.js';
import { NO_AUDIT } from '../core/decisions.js';
import type { ChangeFeed } from '../core/ports.js';
import type { HandlerDeps } from '../grpc/HandlerDeps.js';
import type { Logger } from '../log.js';
import type { Database } from '../store/Database.js';
import type { AuditReports } from '../audit/types.js';
import type { AdminServiceServer } from '../../clients/typescript/src/gen/quota/v1/admin_service.js';
import { wire } from './Capability.js';

export function wireAudit(
  _config: Config,
  logger: Logger,
  _db: Database,
  _feed: ChangeFeed,
  _deps: HandlerDeps,
) {
  return wire(logger, async () => ({
    listener: NO_AUDIT,
    blocks: NO_AUDIT,
    reports: <AuditReports>{},
    handlers: { admin: <Pick<AdminServiceServer, 'getViolations' | 'getStats'>>{} },
    jobs: [],
    health: [],
  }));
}
