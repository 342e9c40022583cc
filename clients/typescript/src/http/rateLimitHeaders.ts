import type { CheckLimitResponse } from '../gen/quota/v1/quota_service.js';
import type { LimitStatus } from '../gen/quota/v1/types.js';
import { ceilSeconds } from './ceilSeconds.js';
import {
  SF_INTEGER_MAX,
  serializeSfBinary,
  serializeSfInteger,
  serializeSfString,
} from './serializeSf.js';

/**
 * The partition key (`pk`) of a limit, as bytes (a string is sent as its UTF-8 bytes), or
 * undefined to send none for that limit.
 */
export type PartitionKeyFunction = (limit: LimitStatus) => Uint8Array | string | undefined;

/** Options of {@link rateLimitHeaders}. */
export interface RateLimitHeaderOptions {
  /**
   * Which limits the `RateLimit` field lists: `'all'` (every limit that applied and is not a
   * shadow one) or `'closest'` (only the one closest to exhaustion: the fewest remaining units,
   * an exceeded one first), as draft-ietf-httpapi-ratelimit-headers-11 appendix B.3.1 does
   * with several windows. `RateLimit-Policy` always lists them all.
   * @default 'all'
   */
  serviceLimits?: 'all' | 'closest';
  /**
   * The `pk` parameter: `false` sends none; `'key'` sends the identifier the limit counted
   * (the caller's IP, user id or API key: it discloses them, see the draft's section 6.1);
   * a function chooses the bytes per limit (see {@link hmacPartitionKey}).
   * @default false
   */
  partitionKey?: false | 'key' | PartitionKeyFunction;
  /**
   * The `qu` parameter of every policy: the unit the quota counts (`"requests"`,
   * `"content-bytes"`, `"concurrent-requests"`).
   * @default none: the draft's default unit, requests
   */
  quotaUnit?: string;
}

/** The response header fields of a CheckLimit answer; a field left out is not to be sent. */
export interface RateLimitHeaderFields {
  /** Every quota policy that applied: `"name";q=<limit>;w=<window s>`. */
  'RateLimit-Policy'?: string;
  /** The service limits: `"name";r=<remaining>;t=<seconds>`. */
  RateLimit?: string;
  /** On a denial: delay-seconds before the same call could be admitted, rounded up. */
  'Retry-After'?: string;
}

interface Policy {
  readonly name: string;
  readonly limit: LimitStatus;
  readonly pk: string;
}

const encoder = new TextEncoder();

/**
 * The IETF RateLimit header fields (draft-ietf-httpapi-ratelimit-headers-11) and Retry-After
 * of a CheckLimit answer. Shadow limits never deny, so they are not advertised; a degraded
 * answer is the failure mode, not a count, so it has no RateLimit fields (only Retry-After
 * when it denies). Every value is a valid Structured Field List (RFC 9651): names are
 * sf-strings, numbers are clamped into sf-integer range, windows and delays are whole seconds
 * rounded up.
 */
export function rateLimitHeaders(
  response: CheckLimitResponse,
  options: RateLimitHeaderOptions = {},
): RateLimitHeaderFields {
  const fields: RateLimitHeaderFields = {};
  const retryAfter = response.allowed ? undefined : retryAfterSeconds(response);
  if (retryAfter !== undefined) fields['Retry-After'] = String(retryAfter);
  if (response.degraded) return fields;
  const policies = policiesOf(response.limits ?? [], options);
  if (policies.length === 0) return fields;
  fields['RateLimit-Policy'] = policies.map((p) => policyItem(p, options)).join(', ');
  const shown = options.serviceLimits === 'closest' ? [closest(policies)] : policies;
  fields.RateLimit = shown.map((p) => serviceLimitItem(p, retryAfter)).join(', ');
  return fields;
}

/**
 * Retry-After of a denial: the answer's retry_after in whole seconds, rounded up and at least
 * 1 (0 would invite an immediate retry that is denied again); without one, the longest reset
 * of an exceeded limit.
 */
function retryAfterSeconds(response: CheckLimitResponse): number {
  const given = ceilSeconds(response.retryAfter);
  const fallback = Math.max(
    0,
    ...(response.limits ?? [])
      .filter((l) => l.exceeded && !l.shadow)
      .map((l) => ceilSeconds(l.resetAfter) ?? 0),
  );
  return Math.min(SF_INTEGER_MAX, Math.max(1, given ?? fallback));
}

/**
 * The non-shadow limits, one per policy name: two limits whose names serialize alike (rule
 * names are unique, so only after replacing characters) keep the one with fewer remaining.
 */
function policiesOf(limits: readonly LimitStatus[], options: RateLimitHeaderOptions): Policy[] {
  const byName = new Map<string, Policy>();
  for (const limit of limits) {
    if (limit.shadow) continue;
    const name = serializeSfString(limit.rule ?? '');
    const seen = byName.get(name);
    if (seen && remainingOf(seen.limit) <= remainingOf(limit)) continue;
    byName.set(name, { name, limit, pk: partitionKeyParameter(limit, options) });
  }
  return [...byName.values()];
}

function partitionKeyParameter(limit: LimitStatus, options: RateLimitHeaderOptions): string {
  const choose = options.partitionKey ?? false;
  if (choose === false) return '';
  const key = choose === 'key' ? limit.key : choose(limit);
  if (key === undefined) return '';
  return `;pk=${serializeSfBinary(typeof key === 'string' ? encoder.encode(key) : key)}`;
}

function policyItem(p: Policy, options: RateLimitHeaderOptions): string {
  // Parameter order as in the draft's examples: q, qu, w, pk.
  let item = `${p.name};q=${nonNegative(p.limit.limit)}`;
  if (options.quotaUnit !== undefined) item += `;qu=${serializeSfString(options.quotaUnit)}`;
  // w must be non-zero; rounding up advertises a window under a second as one (a lower rate).
  const window = ceilSeconds(p.limit.window);
  if (window !== undefined && window > 0) item += `;w=${serializeSfInteger(window)}`;
  return item + p.pk;
}

function serviceLimitItem(p: Policy, retryAfter: number | undefined): string {
  let item = `${p.name};r=${nonNegative(remainingOf(p.limit))}`;
  // t is the time within which no more than r units may be used. For a limit that denied the
  // call that is until the call could be admitted: Retry-After, which then never points
  // earlier than the effective window ends (section 6). Otherwise until its usage has reset.
  const t =
    p.limit.exceeded && retryAfter !== undefined ? retryAfter : ceilSeconds(p.limit.resetAfter);
  if (t !== undefined) item += `;t=${serializeSfInteger(t)}`;
  return item + p.pk;
}

/** Fewest remaining units; on a tie an exceeded limit, then the later reset. */
function closest(policies: readonly Policy[]): Policy {
  return policies.reduce((best, p) => {
    const d = remainingOf(p.limit) - remainingOf(best.limit);
    if (d !== 0) return d < 0 ? p : best;
    if (p.limit.exceeded !== best.limit.exceeded) return p.limit.exceeded ? p : best;
    return (ceilSeconds(p.limit.resetAfter) ?? 0) > (ceilSeconds(best.limit.resetAfter) ?? 0)
      ? p
      : best;
  });
}

/** An exceeded limit has nothing left, whatever the count says. */
function remainingOf(limit: LimitStatus): number {
  return limit.exceeded ? 0 : Number(limit.remaining) || 0;
}

function nonNegative(value: number): string {
  return serializeSfInteger(Math.max(0, Number(value) || 0));
}
