// STUB: the tasks helper replaces this file.
import type { Config } from '../config.js';
import type { HandlerDeps } from '../grpc/HandlerDeps.js';
import type { JobRegistry } from '../jobs/JobRegistry.js';
import type { Logger } from '../log.js';
import type { Database } from '../store/Database.js';
import type { AdminServiceServer } from '../../clients/typescript/src/gen/quota/v1/admin_service.js';
import { wire } from './Capability.js';

export function wireTasks(
  _config: Config,
  logger: Logger,
  _db: Database,
  _jobs: JobRegistry,
  _deps: HandlerDeps,
) {
  return wire(logger, async () => ({
    handlers: {
      admin: <Pick<AdminServiceServer, 'listTasks' | 'runTask' | 'cleanupOldData'>>{},
    },
    jobs: [],
    health: [],
  }));
}
