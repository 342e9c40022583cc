import type { Role as DomainRole, TokenInfo as DomainTokenInfo } from '../auth/types.js';
import { ValidationError } from '../errors.js';
import { Role, type TokenInfo } from '../../clients/typescript/src/gen/quota/v1/admin_service.js';

const ROLE_TO_DOMAIN = new Map<number, DomainRole>([
  [Role.ROLE_CLIENT, 'client'],
  [Role.ROLE_VIEWER, 'viewer'],
  [Role.ROLE_ADMIN, 'admin'],
]);
const ROLE_TO_PROTO: Record<DomainRole, Role> = {
  client: Role.ROLE_CLIENT,
  viewer: Role.ROLE_VIEWER,
  admin: Role.ROLE_ADMIN,
};

export function roleFromProto(role: Role, field: string): DomainRole {
  const r = ROLE_TO_DOMAIN.get(role);
  if (!r) throw new ValidationError(field, 'must be ROLE_CLIENT, ROLE_VIEWER or ROLE_ADMIN');
  return r;
}

export function tokenInfoToProto(t: DomainTokenInfo): TokenInfo {
  return {
    id: t.id,
    name: t.name,
    role: ROLE_TO_PROTO[t.role],
    createdAt: t.createdAt,
    lastUsedAt: t.lastUsedAt ?? undefined,
    revokedAt: t.revokedAt ?? undefined,
  };
}
