import type { AuditReportStore, IpKeys } from './ports.js';
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
  /** `ipKeys`: how CheckLimit keys an address, for the IP filter to match what it recorded. */
  constructor(
    private readonly store: AuditReportStore,
    private readonly ipKeys: IpKeys,
  ) {}

  async violations(filter: ViolationFilter): Promise<ViolationReport> {
    return this.store.violations(validateViolationFilter(filter, this.ipKeys));
  }

  async stats(filter: StatsFilter): Promise<StatsReport> {
    return this.store.stats(validateStatsFilter(filter));
  }
}
