import type { ServiceDefinition } from '@grpc/grpc-js';
import type { Role } from '../auth/types.js';
import { AdminServiceService } from '../../clients/typescript/src/gen/quota/v1/admin_service.js';
import { QuotaServiceService } from '../../clients/typescript/src/gen/quota/v1/quota_service.js';

/**
 * The AdminService methods that only read, which viewers may call. Every other AdminService
 * method needs an admin token: one added to the proto without an entry here is admin-only
 * (closed, not open), and test/unit/methodRoles.test.ts fails for a List* or Get* method left
 * out.
 */
const ADMIN_READS: ReadonlySet<string> = new Set([
  'ListRateLimitRules',
  'ListCommandQuotaRules',
  'GetUserTier',
  'GetThrottleThresholds',
  'GetResourceHealth',
  'GetLoadTrend',
  'GetHourlySummary',
  'ListThrottleEvents',
  'ListTokens',
  'GetViolations',
  'GetStats',
  'GetDashboard',
  'ListTasks',
]);

/**
 * The role each method needs, by full service name and method name, derived from the generated
 * service definitions: every QuotaService method `client`, AdminService's reads `viewer`, its
 * other methods `admin`. Health and reflection are not here: they need no token.
 */
export const METHOD_ROLES: ReadonlyMap<string, ReadonlyMap<string, Role>> = new Map([
  roles(QuotaServiceService, () => 'client'),
  roles(AdminServiceService, (method) => (ADMIN_READS.has(method) ? 'viewer' : 'admin')),
]);

/** The role a call of `service`/`method` needs; `admin` for anything not in the table. */
export function requiredRole(service: string, method: string): Role {
  return METHOD_ROLES.get(service)?.get(method) ?? 'admin';
}

function roles(
  service: ServiceDefinition,
  role: (method: string) => Role,
): [string, ReadonlyMap<string, Role>] {
  const paths = Object.values(service).map((m) => m.path.slice(1).split('/') as [string, string]);
  return [paths[0]![0], new Map(paths.map(([, method]) => [method, role(method)]))];
}
