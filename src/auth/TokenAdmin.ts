import { ValidationError } from '../errors.js';
import type { TokenStore } from './ports.js';
import { hashToken, newToken } from './tokenSecret.js';
import type { Role, TokenInfo } from './types.js';
import { validateTokenName } from './validateTokenName.js';

/**
 * Creating, listing and revoking tokens. Each write runs `changed` before it answers (the
 * server reloads its grants, so that the writer's replica applies its own write at once); other
 * replicas follow through the change feed.
 */
export class TokenAdmin {
  constructor(
    private readonly store: TokenStore,
    private readonly changed: () => Promise<void> = async () => undefined,
  ) {}

  /** A new token of `role`: the token itself is in the answer and nowhere else, ever. */
  async create(name: string, role: Role): Promise<{ token: string; info: TokenInfo }> {
    validateTokenName(name);
    const token = newToken();
    const info = await this.store.create(name, role, hashToken(token));
    await this.changed();
    return { token, info };
  }

  list(): Promise<TokenInfo[]> {
    return this.store.list();
  }

  async revoke(id: number): Promise<TokenInfo> {
    if (!Number.isSafeInteger(id) || id < 1)
      throw new ValidationError('id', 'must be a token id (a positive whole number)');
    const info = await this.store.revoke(id);
    await this.changed();
    return info;
  }
}
