import { validateText } from '../core/validateText.js';
import { ValidationError } from '../errors.js';
import type { IpKeys } from './ports.js';
import type { StatsFilter, ViolationFilter } from './types.js';

/** The longest range a report covers, in days. */
export const MAX_RANGE_DAYS = 366;
/** Recent entries a report may list at most. */
export const MAX_RECENT = 1000;
/** Bytes of a text filter at most (as every identifier of a call). */
const MAX_TEXT_BYTES = 256;

/** Timestamps outside years 1-9999 (protobuf's range) are not a time anyone means. */
const MIN_TIME = new Date('0001-01-01T00:00:00Z').getTime();
const MAX_TIME = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/**
 * A violation filter as the store takes it. Throws ValidationError naming the request field:
 * `since`, `until`, `rule`, `user_id`, `ip`, `limit`. The IP becomes the key CheckLimit
 * records it by (see ipFilterKey).
 */
export function validateViolationFilter(filter: ViolationFilter, ipKeys: IpKeys): ViolationFilter {
  validateRange(filter.since, filter.until);
  if (!Number.isInteger(filter.limit) || filter.limit < 1 || filter.limit > MAX_RECENT)
    throw new ValidationError('limit', `must be 1 to ${MAX_RECENT} (0 means 100)`);
  return {
    since: filter.since,
    until: filter.until,
    limit: filter.limit,
    rule: optionalText(filter.rule, 'rule'),
    userId: optionalText(filter.userId, 'user_id'),
    ip:
      filter.ip === undefined
        ? undefined
        : ipFilterKey(validateText(filter.ip, 'ip', MAX_TEXT_BYTES), ipKeys),
  };
}

/**
 * An IP as CheckLimit records the address: IPv4 itself, IPv6 by its QUOTA_IPV6_PREFIX network,
 * which may also be given as that network ("2001:db8::/64"). Throws ValidationError naming
 * `field`.
 */
export function ipFilterKey(text: string, ipKeys: IpKeys, field = 'ip'): string {
  const slash = text.indexOf('/');
  if (slash < 0) return ipKeys.keyOf(text, field);
  const address = text.slice(0, slash);
  const bits = ipKeys.ipv6PrefixBits;
  if (text.slice(slash + 1) !== String(bits) || !address.includes(':'))
    throw new ValidationError(
      field,
      `must be an address, or an IPv6 network of /${bits} (QUOTA_IPV6_PREFIX)`,
    );
  return ipKeys.keyOf(address, field);
}

/** A statistics filter as the store takes it; throws ValidationError naming `since`, `until` or `name`. */
export function validateStatsFilter(filter: StatsFilter): StatsFilter {
  validateRange(filter.since, filter.until);
  return { since: filter.since, until: filter.until, name: optionalText(filter.name, 'name') };
}

function validateRange(since: Date, until: Date): void {
  checkTime(since, 'since');
  checkTime(until, 'until');
  if (since.getTime() >= until.getTime())
    throw new ValidationError('since', 'must be before until');
  if (until.getTime() - since.getTime() > MAX_RANGE_DAYS * 86_400_000)
    throw new ValidationError('since', `the range must be at most ${MAX_RANGE_DAYS} days`);
}

function checkTime(t: Date, field: string): void {
  const ms = t.getTime();
  if (!Number.isFinite(ms) || ms < MIN_TIME || ms > MAX_TIME)
    throw new ValidationError(field, 'must be a time in years 1 to 9999');
}

function optionalText(value: string | undefined, field: string): string | undefined {
  return value === undefined ? undefined : validateText(value, field, MAX_TEXT_BYTES);
}
