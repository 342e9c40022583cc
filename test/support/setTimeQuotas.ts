import { CommandQuotaService } from '../../src/quotas/CommandQuotaService.js';
import { QuotaAdmin } from '../../src/quotas/QuotaAdmin.js';
import { quotaCaches } from '../../src/quotas/quotaCaches.js';
import { silentLogger } from '../../src/log.js';
import { Database } from '../../src/store/Database.js';
import { PgCommandQuotaStore } from '../../src/store/PgCommandQuotaStore.js';
import { PgCommandRuleStore } from '../../src/store/PgCommandRuleStore.js';
import { PgTierStore } from '../../src/store/PgTierStore.js';

/** The command quota parts on a real database, deciding at the time `now` gives. */
export interface SetTimeQuotas {
  readonly admin: QuotaAdmin;
  /** A service over these parts in `timezone`, with no host load (factor 1). */
  service(timezone: string, reservationTtlS?: number): CommandQuotaService;
  stop(): Promise<void>;
}

/** The real stores, caches (loaded once) and admin, the store's time set by `now`. */
export async function setTimeQuotas(url: string, now: () => Date): Promise<SetTimeQuotas> {
  const logger = silentLogger();
  const database = new Database({ url, timeoutMs: 10_000, poolSize: 4, logger });
  const store = new PgCommandQuotaStore(database, {
    timeoutMs: 10_000,
    recordTimeoutMs: 10_000,
    now,
  });
  const ruleStore = new PgCommandRuleStore(database);
  const tierStore = new PgTierStore(database);
  const { rules, tiers } = quotaCaches(ruleStore, tierStore, logger);
  await Promise.all([rules.reload(), tiers.reload()]);
  return {
    admin: new QuotaAdmin(ruleStore, tierStore, rules, tiers),
    service: (timezone, reservationTtlS = 3600) =>
      new CommandQuotaService(
        rules,
        tiers,
        store,
        { factorFor: () => 1 },
        { failureMode: 'open', timezone, reservationTtlS },
      ),
    async stop() {
      rules.stop();
      tiers.stop();
      await database.close();
    },
  };
}
