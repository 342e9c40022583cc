import { parseSfList, type SfBareItem, type SfParameters } from './parseSfList.js';

/** One item of a `RateLimit-Policy` field (draft-ietf-httpapi-ratelimit-headers-11, §3.1). */
export interface QuotaPolicy {
  /** The policy's name, which `RateLimit` items refer to. */
  readonly policy: string;
  /** `q`: quota units allocated per window. */
  readonly quota: number;
  /** `w`: the window in seconds, when given. */
  readonly window?: number;
  /** `qu`: the quota unit, when given (the draft's default is requests). */
  readonly quotaUnit?: string;
  /** `pk`: the partition key, when given. */
  readonly partitionKey?: Uint8Array;
  /** Every parameter, those above and others (which the draft calls comments). */
  readonly parameters: SfParameters;
}

/** One item of a `RateLimit` field (draft-ietf-httpapi-ratelimit-headers-11, §4.1). */
export interface ServiceLimit {
  /** The name of the policy this limit belongs to. */
  readonly policy: string;
  /** `r`: quota units still available. */
  readonly remaining: number;
  /** `t`: seconds within which no more than `remaining` may be used, when given. */
  readonly effectiveWindow?: number;
  /** `pk`: the partition key, when given. */
  readonly partitionKey?: Uint8Array;
  /** Every parameter, those above and others. */
  readonly parameters: SfParameters;
}

/**
 * The items of a `RateLimit-Policy` field (one value, or the lines of a repeated field), or
 * undefined when it is absent or malformed, which the draft says a client must ignore (§7).
 */
export function parseRateLimitPolicy(
  value: string | readonly string[] | undefined,
): QuotaPolicy[] | undefined {
  const items = stringItems(value);
  if (!items || items.length === 0) return undefined; // a non-empty List (§3)
  const policies: QuotaPolicy[] = [];
  for (const { name, params } of items) {
    const quota = integer(params.get('q'), 0);
    const window = optional(params.get('w'), (v) => integer(v, 1));
    const quotaUnit = optional(params.get('qu'), (v) => (v.type === 'string' ? v.value : null));
    const partitionKey = optional(params.get('pk'), binary);
    if (quota === null || window === null || quotaUnit === null || partitionKey === null)
      return undefined;
    policies.push({
      policy: name,
      quota,
      ...(window !== undefined && { window }),
      ...(quotaUnit !== undefined && { quotaUnit }),
      ...(partitionKey !== undefined && { partitionKey }),
      parameters: params,
    });
  }
  return policies;
}

/** The items of a `RateLimit` field, or undefined when it is absent or malformed. */
export function parseRateLimit(
  value: string | readonly string[] | undefined,
): ServiceLimit[] | undefined {
  const items = stringItems(value);
  if (!items) return undefined;
  const limits: ServiceLimit[] = [];
  for (const { name, params } of items) {
    const remaining = integer(params.get('r'), 0);
    const effectiveWindow = optional(params.get('t'), (v) => integer(v, 0));
    const partitionKey = optional(params.get('pk'), binary);
    if (remaining === null || effectiveWindow === null || partitionKey === null) return undefined;
    limits.push({
      policy: name,
      remaining,
      ...(effectiveWindow !== undefined && { effectiveWindow }),
      ...(partitionKey !== undefined && { partitionKey }),
      parameters: params,
    });
  }
  return limits;
}

/** The List's items, each an sf-string with parameters; undefined if any member is not. */
function stringItems(
  value: string | readonly string[] | undefined,
): { name: string; params: SfParameters }[] | undefined {
  const members = parseSfList(value);
  if (!members) return undefined;
  const items: { name: string; params: SfParameters }[] = [];
  for (const m of members) {
    if (m.kind !== 'item' || m.value.type !== 'string') return undefined;
    items.push({ name: m.value.value, params: m.params });
  }
  return items;
}

/** An integer of at least `min`, or null (absent, another type, or too small). */
function integer(v: SfBareItem | undefined, min: number): number | null {
  return v?.type === 'integer' && v.value >= min ? v.value : null;
}

function binary(v: SfBareItem): Uint8Array | null {
  return v.type === 'binary' ? v.value : null;
}

/** Absent: undefined; present: `read` it (null when it has the wrong type). */
function optional<T>(
  v: SfBareItem | undefined,
  read: (v: SfBareItem) => T | null,
): T | null | undefined {
  return v === undefined ? undefined : read(v);
}
