import { status } from '@grpc/grpc-js';
import type { Authenticator } from '../auth/Authenticator.js';
import type { AuthResult } from '../auth/types.js';
import type { Middleware } from './Middleware.js';
import { requiredRole } from './methodRoles.js';
import { StatusError } from './toStatus.js';

const BEARER = /^Bearer +(\S+) *$/i;

/**
 * Authentication and roles, in the middleware chain: a call runs only with
 * `authorization: Bearer <token>` of a valid token whose role the method needs (METHOD_ROLES).
 * No token, a malformed header or an unknown or revoked token: UNAUTHENTICATED; a role that is
 * not enough: PERMISSION_DENIED. The token never goes into an answer or the log; the call's
 * log line names the token by id.
 */
export function authenticate(authenticator: Authenticator): Middleware {
  return async (ctx, next) => {
    const values = ctx.metadata.get('authorization');
    const header = values.length === 1 && typeof values[0] === 'string' ? values[0] : undefined;
    const token = header === undefined ? undefined : BEARER.exec(header)?.[1];
    if (token === undefined) {
      throw new StatusError(
        status.UNAUTHENTICATED,
        'missing credentials: send the header "authorization: Bearer <token>"',
      );
    }
    const checked = authenticator.check(token, requiredRole(ctx.service, ctx.method));
    const result: AuthResult = checked instanceof Promise ? await checked : checked;
    if (!result.ok) {
      if (result.reason === 'forbidden') {
        throw new StatusError(
          status.PERMISSION_DENIED,
          `this token's role may not call ${ctx.service}/${ctx.method}`,
        );
      }
      throw new StatusError(status.UNAUTHENTICATED, 'unknown or revoked token');
    }
    ctx.logFields['tokenId'] = result.tokenId;
    await next();
  };
}
