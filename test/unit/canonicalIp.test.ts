import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalIp, canonicalIpMatch, ipKey } from '../../src/limits/canonicalIp.js';
import { fieldOf } from '../support/fieldOf.js';

describe('ipKey', () => {
  it.each([
    '192.0.2.77',
    '192.000.002.077',
    '::ffff:192.0.2.77',
    '::FFFF:C000:024D',
    '0:0:0:0:0:ffff:192.000.002.077',
    '0000:0000:0000:0000:0000:ffff:c000:24d',
  ])('keys %s as 192.0.2.77', (text) => {
    expect(ipKey(text, 64)).toBe('192.0.2.77');
  });

  it('reads leading zeros as decimal, never octal', () => {
    expect(ipKey('010.001.000.099', 64)).toBe('10.1.0.99');
  });

  it('keys an IPv6 address by its /64 network by default, and by the prefix given', () => {
    expect(ipKey('2001:DB8:1:2:3:4:5:6', 64)).toBe('2001:db8:1:2::/64');
    expect(ipKey('2001:db8:1:2::ffff', 64)).toBe('2001:db8:1:2::/64');
    expect(ipKey('2001:db8:1:3::1', 64)).toBe('2001:db8:1:3::/64');
    expect(ipKey('2001:db8:1:2:3:4:5:6', 48)).toBe('2001:db8:1::/48');
    expect(ipKey('2001:db8:1:2:3:4:5:6', 60)).toBe('2001:db8:1::/60');
    expect(ipKey('2001:db8:1:2f:3:4:5:6', 60)).toBe('2001:db8:1:20::/60');
    expect(ipKey('2001:db8:1:2:3:4:5:6', 128)).toBe('2001:db8:1:2:3:4:5:6');
  });

  it('drops a zone index and keeps an IPv4-compatible address IPv6 in every spelling', () => {
    expect(ipKey('fe80::1%eth0', 128)).toBe('fe80::1');
    // ::192.0.2.77 is ::c000:24d, an IPv6 address however it is written (not IPv4-mapped).
    expect(ipKey('::192.0.2.77', 128)).toBe(ipKey('::c000:24d', 128));
    expect(ipKey('::192.0.2.77', 128)).toBe('::c000:24d');
  });

  it.each([
    '',
    'localhost',
    '0xc0.0.2.77',
    '0300.0.2.77x',
    '3221226061',
    '192.2.77',
    '1.2.3.256',
    '1.2.3.0077',
    ' 192.0.2.77',
    '192.0.2.77 ',
    '192.0.2.77:443',
    '[::1]',
    '::ffff:0xc0.0.2.77',
    '::ffff:1.2.3',
    '1:2:3:4:5:6:7:1.2.3.4',
    '1::2::3',
    '00001::',
    'fe80::1%',
    '%eth0',
    '2001:db8::/64',
    '١.٢.٣.٤',
  ])('rejects %j naming the field', (text) => {
    expect(fieldOf(() => ipKey(text, 64))).toBe('ip');
  });
});

describe('canonicalIpMatch', () => {
  it('stores one address however it is written, and refuses networks and non-addresses', () => {
    expect(canonicalIpMatch('192.000.002.077')).toBe('192.0.2.77');
    expect(canonicalIpMatch('::ffff:192.0.2.77')).toBe('192.0.2.77');
    expect(canonicalIpMatch('2001:DB8:0:0::1')).toBe('2001:db8::1');
    expect(fieldOf(() => canonicalIpMatch('2001:db8::/64'))).toBe('rule.match');
    expect(fieldOf(() => canonicalIpMatch('office'))).toBe('rule.match');
  });
});

/** Ways to write one IPv4 address: zero-padded parts, mapped into IPv6 in dotted or hex form. */
const ipv4Spellings = fc
  .tuple(
    fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 4, maxLength: 4 }),
    fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 4, maxLength: 4 }),
    fc.constantFrom('dotted', 'mapped', 'mapped-hex', 'mapped-long'),
    fc.boolean(),
  )
  .map(([octets, widths, form, upper]) => {
    const plain = octets.join('.');
    const padded = octets.map((o, i) => String(o).padStart(widths[i]!, '0')).join('.');
    const hi = ((octets[0]! << 8) | octets[1]!).toString(16).padStart(widths[0]!, '0');
    const lo = ((octets[2]! << 8) | octets[3]!).toString(16).padStart(widths[1]!, '0');
    const text = {
      dotted: padded,
      mapped: `::ffff:${padded}`,
      'mapped-hex': `::ffff:${hi}:${lo}`,
      'mapped-long': `0:0:0:0:0:ffff:${padded}`,
    }[form];
    return { plain, text: upper ? text.toUpperCase() : text };
  });

/** Ways to write one IPv6 address: expanded, zero-padded, compressed, upper case, with a zone. */
const ipv6Spellings = fc
  .tuple(
    fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 }),
    fc.boolean(),
    fc.boolean(),
    fc.boolean(),
  )
  .filter(([groups]) => !(groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff))
  .map(([groups, pad, upper, zone]) => {
    const expanded = groups.map((g) => g.toString(16).padStart(pad ? 4 : 1, '0')).join(':');
    const canonical = canonicalIp(groups.map((g) => g.toString(16)).join(':'), 'ip');
    const text = pad ? expanded : canonical;
    return {
      groups,
      text: (upper ? text.toUpperCase() : text) + (zone ? '%eth0' : ''),
    };
  });

describe('any spelling of one address maps to one key', () => {
  it('IPv4, plain or mapped into IPv6', () => {
    fc.assert(
      fc.property(ipv4Spellings, ({ plain, text }) => {
        expect(ipKey(text, 64)).toBe(plain);
      }),
    );
  });

  it('IPv6 by its network, at any prefix length', () => {
    fc.assert(
      fc.property(ipv6Spellings, fc.integer({ min: 32, max: 128 }), ({ groups, text }, bits) => {
        const reference = ipKey(groups.map((g) => g.toString(16)).join(':'), bits);
        expect(ipKey(text, bits)).toBe(reference);
      }),
    );
  });

  it('two IPv6 addresses share a key exactly when their first prefix bits agree', () => {
    fc.assert(
      fc.property(ipv6Spellings, ipv6Spellings, fc.integer({ min: 32, max: 128 }), (a, b, bits) => {
        const bitsOf = (groups: number[]) =>
          groups.map((g) => g.toString(2).padStart(16, '0')).join('');
        const same = bitsOf(a.groups).slice(0, bits) === bitsOf(b.groups).slice(0, bits);
        expect(ipKey(a.text, bits) === ipKey(b.text, bits)).toBe(same);
      }),
    );
  });
});
