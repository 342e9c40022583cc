import type { Config } from '../config.js';
import type { ChangeFeed, ThrottleSource } from '../core/ports.js';
import type { HandlerDeps } from '../grpc/HandlerDeps.js';
import { limitHandlers } from '../grpc/limitHandlers.js';
import { expiryJob } from '../jobs/expiryJob.js';
import { ApiKeyHasher } from '../limits/ApiKeyHasher.js';
import { CallerKeys } from '../limits/CallerKeys.js';
import { LimitService } from '../limits/LimitService.js';
import { RuleAdmin } from '../limits/RuleAdmin.js';
import { RuleCache } from '../limits/RuleCache.js';
import type { Logger } from '../log.js';
import { decisionQueueGauge } from '../metrics/decisionQueueGauge.js';
import type { Database } from '../store/Database.js';
import { PgLimitStore } from '../store/PgLimitStore.js';
import { PgMaintenance } from '../store/PgMaintenance.js';
import { PgRuleStore } from '../store/PgRuleStore.js';
import { PgSecretStore } from '../store/PgSecretStore.js';
import { wire } from './Capability.js';
import type { DecisionHooks } from './DecisionHooks.js';

/** Wait before another try at the API-key secret, in ms. */
const SECRET_RETRY_MS = 1000;

/**
 * Rate limits: the rule cache every replica keeps current, CheckLimit's decisions, the rule
 * admin methods, and the expiry of counters and idempotency answers. Health needs the rules
 * loaded: without them there is nothing to decide by. Callers are keyed by CallerKeys, whose
 * API-key secret comes first (configured, or read or generated in the database), then rules
 * that still hold raw API keys are hashed, then the rules are loaded.
 */
export function wireLimits(
  config: Config,
  logger: Logger,
  db: Database,
  feed: ChangeFeed,
  throttle: ThrottleSource,
  deps: HandlerDeps,
  hooks: DecisionHooks,
) {
  return wire(logger, async (stops) => {
    const keys = new CallerKeys(config.ipv6PrefixBits);
    const ruleStore = new PgRuleStore(db);
    const ruleCache = new RuleCache(ruleStore, logger, undefined, (rule) => keys.forIndex(rule));
    const rules = new RuleAdmin(ruleStore, ruleCache, keys);
    const secrets = new PgSecretStore(db);

    // An external database may be migrated after the start: until then there is no secret
    // table, nothing is decided (failure mode) and health says NOT_SERVING; tried every second.
    let retry: NodeJS.Timeout | undefined;
    let stopped = false;
    let warned = false;
    const start = async (): Promise<void> => {
      try {
        keys.useHasher(await ApiKeyHasher.load(config.apiKeySecret, secrets));
        const hashed = await rules.hashRawApiKeyMatches();
        if (hashed.length > 0) logger.info({ rules: hashed }, 'API keys in rule matches hashed');
        await ruleCache.start(feed);
      } catch (err) {
        if (!warned) logger.warn({ err }, 'API-key secret not loaded; trying again every second');
        warned = true;
        if (stopped) return;
        retry = setTimeout(() => void start(), SECRET_RETRY_MS);
        retry.unref();
      }
    };
    await start();
    stops.push(() => {
      stopped = true;
      clearTimeout(retry);
      ruleCache.stop();
    });
    // Rules may have changed while the database was away.
    db.on('up', () => void ruleCache.reload());

    const store = new PgLimitStore(db, {
      timeoutMs: config.dbTimeoutMs,
      onBatch: (items) => hooks.onBatch('limits', items),
    });
    const limits = new LimitService(ruleCache, store, throttle, {
      failureMode: config.failureMode,
      timezone: config.timezone,
      keys,
      listener: hooks.listener,
      blocks: hooks.blocks,
    });
    return {
      handlers: limitHandlers({ limits, rules }, deps, logger, hooks.onItemError),
      health: [{ name: 'rules', ready: () => ruleCache.ready && keys.ready }],
      gauges: [decisionQueueGauge({ limits: () => store.queued })],
      jobs: [expiryJob('expired-state-cleanup', new PgMaintenance(db), logger)],
    };
  });
}
