import type { TokenAdmin } from '../auth/TokenAdmin.js';
import type { AdminServiceServer } from '../../clients/typescript/src/gen/quota/v1/admin_service.js';
import { handleUnary } from './handleUnary.js';
import type { HandlerDeps } from './HandlerDeps.js';
import { ADMIN_SERVICE } from './services.js';
import { roleFromProto, tokenInfoToProto } from './tokenMapping.js';

/** The token methods of AdminService. */
export interface TokenHandlers {
  readonly admin: Pick<AdminServiceServer, 'createToken' | 'listTokens' | 'revokeToken'>;
}

/** Each handler maps the request, calls one domain function, maps the result. */
export function tokenHandlers(tokens: TokenAdmin, deps: HandlerDeps): TokenHandlers {
  return {
    admin: {
      createToken: handleUnary(ADMIN_SERVICE, 'CreateToken', deps, async (req) => {
        const { token, info } = await tokens.create(req.name, roleFromProto(req.role, 'role'));
        return { token, info: tokenInfoToProto(info) };
      }),
      listTokens: handleUnary(ADMIN_SERVICE, 'ListTokens', deps, async () => ({
        tokens: (await tokens.list()).map(tokenInfoToProto),
      })),
      revokeToken: handleUnary(ADMIN_SERVICE, 'RevokeToken', deps, async (req) => ({
        token: tokenInfoToProto(await tokens.revoke(req.id)),
      })),
    },
  };
}
