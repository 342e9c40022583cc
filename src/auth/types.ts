/**
 * What a token may call: `client` QuotaService, `viewer` that and AdminService's read-only
 * methods, `admin` everything. Each role includes the ones before it.
 */
export type Role = 'client' | 'viewer' | 'admin';
export const ROLES: readonly Role[] = ['client', 'viewer', 'admin'];

/** Whether a token of role `held` may call a method that needs `required`. */
export function roleAllows(held: Role, required: Role): boolean {
  return ROLES.indexOf(held) >= ROLES.indexOf(required);
}

/** A bearer token as stored: never the token itself. */
export interface TokenInfo {
  readonly id: number;
  readonly name: string;
  readonly role: Role;
  readonly createdAt: Date;
  /** Written in batches (see TokenUsage), so late by up to the flush interval. */
  readonly lastUsedAt: Date | null;
  readonly revokedAt: Date | null;
}

/** What authentication needs of a stored token, found by its hash. */
export interface TokenGrant {
  readonly id: number;
  /** SHA-256 of the token (see hashToken). */
  readonly hash: Buffer;
  readonly role: Role;
  readonly revoked: boolean;
}

/** The outcome of authenticating a call: a refusal is a result, not an error. */
export type AuthResult =
  | { readonly ok: true; readonly tokenId: number }
  | { readonly ok: false; readonly reason: 'unauthenticated' | 'forbidden' };

/** Whether `text` names a role. */
export function isRole(text: string): text is Role {
  return (ROLES as readonly string[]).includes(text);
}
