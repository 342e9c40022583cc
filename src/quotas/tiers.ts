import type { Tier, TierName } from './types.js';

/** The tiers: `default` 1x, `premium` 10x, `enterprise` unlimited and never delayed. */
export const TIERS: Readonly<Record<TierName, Tier>> = {
  default: { name: 'default', multiplier: 1, delayed: true },
  premium: { name: 'premium', multiplier: 10, delayed: true },
  enterprise: { name: 'enterprise', multiplier: null, delayed: false },
};
