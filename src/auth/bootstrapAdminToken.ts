import type { TokenStore } from './ports.js';
import { hashToken, newToken } from './tokenSecret.js';

/** What starting did about the first admin token. */
export type AdminBootstrap =
  /** QUOTA_ADMIN_TOKEN is stored (now, or by an earlier start); a revoked one stays revoked. */
  | { readonly kind: 'configured'; readonly created: boolean; readonly revoked: boolean }
  /** The store held no token and none was configured: this one was made, to be shown once. */
  | { readonly kind: 'created'; readonly token: string }
  /** The store holds tokens already and none was configured. */
  | { readonly kind: 'existing' };

/** Names of the tokens starting stores, as ListTokens shows them. */
export const CONFIGURED_TOKEN_NAME = 'QUOTA_ADMIN_TOKEN';
export const FIRST_TOKEN_NAME = 'first-start admin';

/**
 * Makes sure an administrator can get in: the configured admin token is stored (by its hash,
 * idempotently, on every start of every replica), or, when none is configured and the store
 * holds no token at all, one admin token is made; of replicas starting together on an empty
 * store, only one makes it.
 */
export async function bootstrapAdminToken(
  store: TokenStore,
  configured: string | undefined,
): Promise<AdminBootstrap> {
  if (configured !== undefined) {
    return {
      kind: 'configured',
      ...(await store.ensureAdmin(CONFIGURED_TOKEN_NAME, hashToken(configured))),
    };
  }
  const token = newToken();
  return (await store.createAdminIfNone(FIRST_TOKEN_NAME, hashToken(token)))
    ? { kind: 'created', token }
    : { kind: 'existing' };
}
