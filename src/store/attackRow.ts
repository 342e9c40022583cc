import type { AttackKind, AttackPattern } from '../audit/types.js';

/** An attack_flags row as the audit stores read it: times as epoch ms, the count as text. */
export interface StoredAttack {
  kind: AttackKind;
  scope: string;
  key: string;
  count: string;
  first_seen: number;
  last_seen: number;
  blocked_until: number | null;
}

/** The columns of a StoredAttack from attack_flags aliased `alias`. */
export function attackColumns(alias: string): string {
  const ms = (col: string) => `(extract(epoch FROM ${alias}.${col}) * 1000)::float8 AS ${col}`;
  return `${alias}.kind, ${alias}.scope, ${alias}.key, ${alias}.count::text AS count,
          ${ms('first_seen')}, ${ms('last_seen')}, ${ms('blocked_until')}`;
}

export function attackFromRow(a: StoredAttack): AttackPattern {
  return {
    kind: a.kind,
    scope: a.scope,
    key: a.key,
    count: Number(a.count),
    firstSeen: new Date(a.first_seen),
    lastSeen: new Date(a.last_seen),
    blockedUntil: a.blocked_until === null ? null : new Date(a.blocked_until),
  };
}
