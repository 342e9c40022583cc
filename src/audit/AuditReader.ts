import type { AuditReportStore } from './ports.js';
import type {
  AuditReports,
  StatsFilter,
  StatsReport,
  ViolationFilter,
  ViolationReport,
} from './types.js';
import { validateStatsFilter, validateViolationFilter } from './validateAuditFilter.js';

/** GetViolations and GetStats: filters checked here, read from the store. */
export class AuditReader implements AuditReports {
  /** `ipKey`: an address as CheckLimit records it; throws ValidationError naming `ip`. */
  constructor(
    private readonly store: AuditReportStore,
    private readonly ipKey: (text: string) => string,
  ) {}

  async violations(filter: ViolationFilter): Promise<ViolationReport> {
    return this.store.violations(validateViolationFilter(filter, this.ipKey));
  }

  async stats(filter: StatsFilter): Promise<StatsReport> {
    return this.store.stats(validateStatsFilter(filter));
  }
}
