import type { Config } from '../config.js';
import type { ChangeFeed, ThrottleSource } from '../core/ports.js';
import type { HandlerDeps } from '../grpc/HandlerDeps.js';
import { limitHandlers } from '../grpc/limitHandlers.js';
import { expiredStateJob } from '../jobs/expiredStateJob.js';
import { LimitService } from '../limits/LimitService.js';
import { RuleAdmin } from '../limits/RuleAdmin.js';
import { RuleCache } from '../limits/RuleCache.js';
import type { Logger } from '../log.js';
import type { Database } from '../store/Database.js';
import { PgLimitStore } from '../store/PgLimitStore.js';
import { PgMaintenance } from '../store/PgMaintenance.js';
import { PgRuleStore } from '../store/PgRuleStore.js';
import { wire } from './Capability.js';

/**
 * Rate limits: the rule cache every replica keeps current, CheckLimit's decisions, the rule
 * admin methods, and the expiry of counters and idempotency answers. Health needs the rules
 * loaded: without them there is nothing to decide by.
 */
export function wireLimits(
  config: Config,
  logger: Logger,
  db: Database,
  feed: ChangeFeed,
  throttle: ThrottleSource,
  deps: HandlerDeps,
) {
  return wire(logger, async (stops) => {
    const ruleStore = new PgRuleStore(db);
    const ruleCache = new RuleCache(ruleStore, logger);
    await ruleCache.start(feed);
    stops.push(() => ruleCache.stop());
    // Rules may have changed while the database was away.
    db.on('up', () => void ruleCache.reload());

    const limits = new LimitService(
      ruleCache,
      new PgLimitStore(db, { timeoutMs: config.dbTimeoutMs }),
      throttle,
      { failureMode: config.failureMode, timezone: config.timezone, logger },
    );
    return {
      handlers: limitHandlers({ limits, rules: new RuleAdmin(ruleStore, ruleCache) }, deps),
      health: [{ name: 'rules', ready: () => ruleCache.ready }],
      jobs: [expiredStateJob(new PgMaintenance(db), logger)],
    };
  });
}
