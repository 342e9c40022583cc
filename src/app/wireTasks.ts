import type { Config } from '../config.js';
import type { HandlerDeps } from '../grpc/HandlerDeps.js';
import { taskHandlers } from '../grpc/taskHandlers.js';
import { hourlyRollupsJob } from '../jobs/hourlyRollupsJob.js';
import type { JobRegistry } from '../jobs/JobRegistry.js';
import { RetentionCleanup } from '../jobs/RetentionCleanup.js';
import { TaskAdmin } from '../jobs/TaskAdmin.js';
import type { Logger } from '../log.js';
import type { Database } from '../store/Database.js';
import { PgLeaderLock } from '../store/PgLeaderLock.js';
import { PgLoadRollupStore } from '../store/PgLoadRollupStore.js';
import { PgRetentionStore } from '../store/PgRetentionStore.js';
import { wire } from './Capability.js';

/**
 * Background tasks as operators see them: retention cleanup and hourly rollups (both
 * cluster-wide), and the AdminService methods that list the registry's tasks, run one now and
 * clean up now. The registry itself is the root's: every capability registers its jobs there.
 */
export function wireTasks(
  config: Config,
  logger: Logger,
  db: Database,
  jobs: JobRegistry,
  deps: HandlerDeps,
) {
  return wire(logger, async () => {
    const retention = new RetentionCleanup(
      new PgRetentionStore(db),
      new PgLeaderLock(db),
      {
        executions: config.retention.executionsDays,
        violations: config.retention.violationsDays,
        loadHistory: config.loadHistoryDays,
        rollups: config.retention.rollupsDays,
      },
      logger,
    );
    const admin = new TaskAdmin(jobs, retention, config.hostName);
    return {
      handlers: taskHandlers(admin, deps),
      jobs: [retention.job(), hourlyRollupsJob(new PgLoadRollupStore(db), logger)],
      health: [],
    };
  });
}
