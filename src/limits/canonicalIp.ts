import ipaddr from 'ipaddr.js';
import { ValidationError } from '../errors.js';

/** IPv4 in four dotted decimal parts; a part's leading zeros are allowed and read as decimal. */
const DOTTED = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** Bounds of the IPv6 prefix that IPv6 callers are counted by (QUOTA_IPV6_PREFIX). */
export const MIN_IPV6_PREFIX = 32;
export const MAX_IPV6_PREFIX = 128;

/**
 * The address written in `text`, by its value: IPv4 in four dotted decimal parts (leading zeros
 * read as decimal, never octal), or IPv6 in any RFC 4291 form, with an IPv4 tail or a zone index
 * (dropped: it names an interface of the host that saw the caller, not the caller). An
 * IPv4-mapped IPv6 address is its IPv4 address. Hex, octal and fewer-part IPv4 forms
 * (`0xc0.0.2.1`, `3221225985`, `192.2.1`) are rejected: parsers disagree on what they mean.
 * Throws ValidationError naming `field`.
 */
export function parseIp(text: string, field: string): ipaddr.IPv4 | ipaddr.IPv6 {
  const v4 = parseDotted(text);
  if (v4) return v4;
  const v6 = parseV6(text);
  if (!v6) throw new ValidationError(field, 'must be an IPv4 or IPv6 address');
  return v6.isIPv4MappedAddress() ? v6.toIPv4Address() : v6;
}

/** `text` as one canonical address: IPv4 dotted decimal, IPv6 as RFC 5952 writes it. */
export function canonicalIp(text: string, field: string): string {
  return format(parseIp(text, field));
}

/**
 * The counter key of an address: an IPv4 address itself, an IPv6 address by its network of
 * `ipv6PrefixBits` (`2001:db8:1:2::/64`), since one client commonly holds a whole /64 and would
 * otherwise have 2^64 counters. With 128 the key is the address. Throws ValidationError naming
 * `field`.
 */
export function ipKey(text: string, ipv6PrefixBits: number, field = 'ip'): string {
  const address = parseIp(text, field);
  if (address.kind() === 'ipv4' || ipv6PrefixBits >= MAX_IPV6_PREFIX) return format(address);
  const parts = (address as ipaddr.IPv6).parts.map((part, i) => {
    const keep = Math.min(16, Math.max(0, ipv6PrefixBits - i * 16));
    return part & ((0xffff << (16 - keep)) & 0xffff);
  });
  return `${new ipaddr.IPv6(parts).toRFC5952String()}/${ipv6PrefixBits}`;
}

/** An exact IP rule match as stored: the canonical address. Throws ValidationError `rule.match`. */
export function canonicalIpMatch(match: string): string {
  if (match.includes('/')) {
    throw new ValidationError(
      'rule.match',
      'must be one IP address (an IPv6 rule applies to the QUOTA_IPV6_PREFIX network of its address)',
    );
  }
  return canonicalIp(match, 'rule.match');
}

function format(address: ipaddr.IPv4 | ipaddr.IPv6): string {
  return address.kind() === 'ipv4'
    ? address.toString()
    : (address as ipaddr.IPv6).toRFC5952String();
}

function parseDotted(text: string): ipaddr.IPv4 | undefined {
  const m = DOTTED.exec(text);
  if (!m) return undefined;
  const octets = [Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4])];
  return octets.every((o) => o <= 255) ? new ipaddr.IPv4(octets) : undefined;
}

function parseV6(text: string): ipaddr.IPv6 | undefined {
  const zone = text.indexOf('%');
  // A zone index is one token after the address ("fe80::1%eth0"); an empty one is malformed.
  if (zone === 0 || zone === text.length - 1 || /\s/.test(text)) return undefined;
  let rest = zone > 0 ? text.slice(0, zone) : text;
  const lastColon = rest.lastIndexOf(':');
  if (lastColon < 0) return undefined;
  const tail = rest.slice(lastColon + 1);
  if (tail.includes('.')) {
    // The IPv4 tail is read by the IPv4 rule above (ipaddr.js would read 077 as octal in one
    // form and decimal in another) and handed on as its two 16-bit groups.
    const v4 = parseDotted(tail);
    if (!v4) return undefined;
    const [a, b, c, d] = v4.octets as [number, number, number, number];
    rest = `${rest.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  try {
    return ipaddr.IPv6.parse(rest);
  } catch {
    return undefined;
  }
}
