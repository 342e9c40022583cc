import { describe, expect, it } from 'vitest';
import { AdminServiceService } from '../../clients/typescript/src/gen/quota/v1/admin_service.js';
import { QuotaServiceService } from '../../clients/typescript/src/gen/quota/v1/quota_service.js';
import { METHOD_ROLES, requiredRole } from '../../src/grpc/methodRoles.js';

const names = (service: Record<string, { path: string }>) =>
  Object.values(service).map((m) => m.path.slice(1).split('/') as [string, string]);

describe('the role each method needs', () => {
  it('is client for every QuotaService method', () => {
    for (const [service, method] of names(QuotaServiceService))
      expect(requiredRole(service, method), method).toBe('client');
  });

  // A new AdminService method is admin-only until it is listed as a read: a List* or Get*
  // method left out fails here, and so does a listed method that writes.
  it('is viewer for exactly the List* and Get* methods of AdminService, admin for the rest', () => {
    for (const [service, method] of names(AdminServiceService)) {
      const reads = /^(List|Get)[A-Z]/.test(method);
      expect(requiredRole(service, method), method).toBe(reads ? 'viewer' : 'admin');
    }
  });

  it('covers every method of both services, and nothing else', () => {
    const table = [...METHOD_ROLES].flatMap(([s, methods]) =>
      [...methods.keys()].map((m) => `${s}/${m}`),
    );
    const defined = [...names(QuotaServiceService), ...names(AdminServiceService)].map((p) =>
      p.join('/'),
    );
    expect(table.sort()).toEqual(defined.sort());
  });

  it('is admin for a method or service it does not know', () => {
    expect(requiredRole('quota.v1.AdminService', 'DropEverything')).toBe('admin');
    expect(requiredRole('quota.v2.QuotaService', 'CheckLimit')).toBe('admin');
  });
});
