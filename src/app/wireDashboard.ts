import { Dashboard, type DashboardSources } from '../dashboard/Dashboard.js';
import { dashboardHandlers } from '../grpc/dashboardHandlers.js';
import type { HandlerDeps } from '../grpc/HandlerDeps.js';
import type { Logger } from '../log.js';
import { wire } from './Capability.js';

/**
 * The operators' dashboard: one read across load, audit and quotas. It holds nothing of its own
 * (no jobs, nothing health waits for).
 */
export function wireDashboard(logger: Logger, sources: DashboardSources, deps: HandlerDeps) {
  return wire(logger, async () => ({
    handlers: dashboardHandlers(new Dashboard(sources), deps),
    jobs: [],
    health: [],
  }));
}
