import type { Config } from '../config.js';
import type { ChangeFeed, ThrottleSource } from '../core/ports.js';
import { commandQuotaHandlers } from '../grpc/commandQuotaHandlers.js';
import type { HandlerDeps } from '../grpc/HandlerDeps.js';
import { expiryJob } from '../jobs/expiryJob.js';
import type { Logger } from '../log.js';
import { decisionQueueGauge } from '../metrics/decisionQueueGauge.js';
import { CommandQuotaService } from '../quotas/CommandQuotaService.js';
import { QuotaAdmin } from '../quotas/QuotaAdmin.js';
import { quotaCaches } from '../quotas/quotaCaches.js';
import type { Database } from '../store/Database.js';
import { PgCommandQuotaStore } from '../store/PgCommandQuotaStore.js';
import { PgCommandRuleStore } from '../store/PgCommandRuleStore.js';
import { PgQuotaMaintenance } from '../store/PgQuotaMaintenance.js';
import { PgQuotaUsage } from '../store/PgQuotaUsage.js';
import { PgTierStore } from '../store/PgTierStore.js';
import { wire } from './Capability.js';
import type { DecisionHooks } from './DecisionHooks.js';

/** Time a RecordExecution has to be stored durably before it is answered UNAVAILABLE, in ms. */
const RECORD_TIMEOUT_MS = 2000;

/**
 * Command quotas: the rule and tier caches every replica keeps current, CheckCommandQuota,
 * RecordExecution and GetQuotaStatus, the rule and tier admin methods, and the expiry of old
 * reservations. Health needs rules and tiers loaded: without them there is nothing to decide by.
 */
export function wireQuotas(
  config: Config,
  logger: Logger,
  db: Database,
  feed: ChangeFeed,
  throttle: ThrottleSource,
  deps: HandlerDeps,
  hooks: DecisionHooks,
) {
  return wire(logger, async (stops) => {
    const ruleStore = new PgCommandRuleStore(db);
    const tierStore = new PgTierStore(db);
    const { rules, tiers } = quotaCaches(ruleStore, tierStore, logger);
    // A database not migrated yet fails the first load: retried in the background meanwhile.
    stops.push(() => rules.stop());
    stops.push(() => tiers.stop());
    // Both loads at once: one round trip of start-up, not two in a row.
    await Promise.all([rules.start(feed, 'command_quota_rules'), tiers.start(feed, 'user_tiers')]);
    // Rules and tiers may have changed while the database was away.
    db.on('up', () => {
      void rules.reload();
      void tiers.reload();
    });

    const store = new PgCommandQuotaStore(db, {
      timeoutMs: config.dbTimeoutMs,
      recordTimeoutMs: Math.max(RECORD_TIMEOUT_MS, config.dbTimeoutMs),
      onBatch: (items) => hooks.onBatch('command_quotas', items),
    });
    const quotas = new CommandQuotaService(rules, tiers, store, throttle, {
      failureMode: config.failureMode,
      timezone: config.timezone,
      reservationTtlS: config.reservationTtlS,
      listener: hooks.listener,
    });
    const admin = new QuotaAdmin(ruleStore, tierStore, rules, tiers);
    return {
      usage: new PgQuotaUsage(db),
      handlers: commandQuotaHandlers({ quotas, admin }, deps),
      health: [{ name: 'command quota rules', ready: () => rules.ready && tiers.ready }],
      gauges: [
        decisionQueueGauge({
          command_quotas: () => store.queued.decisions,
          executions: () => store.queued.records,
        }),
      ],
      jobs: [expiryJob('expired-reservations-cleanup', new PgQuotaMaintenance(db), logger)],
    };
  });
}
