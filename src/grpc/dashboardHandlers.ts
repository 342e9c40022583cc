import type { Dashboard } from '../dashboard/Dashboard.js';
import type { AdminServiceServer } from '../../clients/typescript/src/gen/quota/v1/admin_service.js';
import { dashboardToProto } from './dashboardMapping.js';
import { handleUnary } from './handleUnary.js';
import type { HandlerDeps } from './HandlerDeps.js';
import { ADMIN_SERVICE } from './services.js';

/** Hours GetDashboard covers when the request leaves `hours` 0. */
const DEFAULT_HOURS = 24;

export interface DashboardHandlers {
  readonly admin: Pick<AdminServiceServer, 'getDashboard'>;
}

export function dashboardHandlers(dashboard: Dashboard, deps: HandlerDeps): DashboardHandlers {
  return {
    admin: {
      getDashboard: handleUnary(ADMIN_SERVICE, 'GetDashboard', deps, async (req) =>
        dashboardToProto(await dashboard.read(req.hours || DEFAULT_HOURS)),
      ),
    },
  };
}
