import type { FollowedCache } from '../core/FollowedCache.js';
import { NotFoundError } from '../errors.js';
import type { BlockIndex } from './AttackBlocks.js';
import type { AttackStore, IpKeys } from './ports.js';
import type { AttackPattern } from './types.js';
import { validateBlockKey } from './validateBlockKey.js';

/**
 * What operators do to attack blocks. A lift reloads this replica's blocks before it answers, so
 * the replica that answered admits the key at once; the others follow through the change feed
 * within a second.
 */
export class AttackBlockAdmin {
  /** `ipKeys`: how CheckLimit keys an address, for a lifted IP to be the key it blocks. */
  constructor(
    private readonly store: AttackStore,
    private readonly blocks: FollowedCache<BlockIndex>,
    private readonly ipKeys: IpKeys,
  ) {}

  /**
   * Ends the block of `key` now; its flags stay, with blocked_until the time of the lift.
   * Resolves the flags whose block ended. Throws ValidationError naming `scope` or `key`, and
   * NotFoundError when the key is not blocked now.
   */
  async lift(scope: string, key: string): Promise<AttackPattern[]> {
    const target = validateBlockKey(scope, key, this.ipKeys);
    const lifted = await this.store.lift(target.scope, target.key);
    if (lifted.length === 0) throw new NotFoundError(`attack block of ${target.scope}`, target.key);
    await this.blocks.reload();
    return lifted;
  }
}
