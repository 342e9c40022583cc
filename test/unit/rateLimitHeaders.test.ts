import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CheckLimitResponse,
  hmacPartitionKey,
  LimitStatus,
  parseRateLimit,
  parseRateLimitPolicy,
  rateLimitHeaders,
  Scope,
  type RateLimitHeaderOptions,
} from '@quota-authority/client';

// The draft these tests check: draft-ietf-httpapi-ratelimit-headers-11 (23 May 2026), the
// latest revision, read from the working group's repository
// (ietf-wg-httpapi/ratelimit-headers, folder draft-ietf-httpapi-ratelimit-headers-11/). Each
// example test quotes the section and the field values it reproduces from a CheckLimit answer
// that says the same thing.

const s = (seconds: number, nanos = 0) => ({ seconds, nanos });

function limit(l: Partial<LimitStatus>): LimitStatus {
  return LimitStatus.fromPartial({ scope: Scope.SCOPE_IP, key: '192.0.2.1', ...l });
}

function answer(a: Partial<CheckLimitResponse>): CheckLimitResponse {
  return CheckLimitResponse.fromPartial({ allowed: true, throttleFactor: 1, ...a });
}

/** One limit that admitted: `remaining` left of `q` per `w` s, reset after `t` s. */
function admitted(rule: string, q: number, w: number | undefined, r: number, t?: number) {
  return limit({
    rule,
    limit: q,
    remaining: r,
    ...(w !== undefined && { window: s(w) }),
    ...(t !== undefined && { resetAfter: s(t) }),
  });
}

const fromBase64 = (b64: string) => new Uint8Array(Buffer.from(b64, 'base64'));

describe('rateLimitHeaders: the examples of draft-ietf-httpapi-ratelimit-headers-11', () => {
  it('§3: RateLimit-Policy: "burst";q=100;w=60,"daily";q=1000;w=86400', () => {
    const fields = rateLimitHeaders(
      answer({ limits: [admitted('burst', 100, 60, 99, 60), admitted('daily', 1000, 86400, 999)] }),
    );
    // RFC 9651 serializes list members with ", "; the draft wrote this one without the space.
    expect(fields['RateLimit-Policy']).toBe('"burst";q=100;w=60, "daily";q=1000;w=86400');
    expect(parseRateLimitPolicy(fields['RateLimit-Policy'])).toEqual(
      parseRateLimitPolicy('"burst";q=100;w=60,"daily";q=1000;w=86400'),
    );
  });

  it('§3.2: RateLimit-Policy: "default";q=100;w=10', () => {
    const fields = rateLimitHeaders(answer({ limits: [admitted('default', 100, 10, 50, 5)] }));
    expect(fields['RateLimit-Policy']).toBe('"default";q=100;w=10');
  });

  it('§3.2: RateLimit-Policy: "permin";q=50;w=60,"perhr";q=1000;w=3600', () => {
    const fields = rateLimitHeaders(
      answer({ limits: [admitted('permin', 50, 60, 20, 23), admitted('perhr', 1000, 3600, 399)] }),
    );
    expect(fields['RateLimit-Policy']).toBe('"permin";q=50;w=60, "perhr";q=1000;w=3600');
    expect(parseRateLimitPolicy(fields['RateLimit-Policy'])).toEqual(
      parseRateLimitPolicy('"permin";q=50;w=60,"perhr";q=1000;w=3600'),
    );
  });

  it('§3.2: RateLimit-Policy: "peruser";q=100;w=60;pk=:cHsdsRa894==:', () => {
    const pk = fromBase64('cHsdsRa894==');
    const fields = rateLimitHeaders(answer({ limits: [admitted('peruser', 100, 60, 10, 30)] }), {
      partitionKey: () => pk,
    });
    // The draft's base64 has non-zero pad bits ("4" before "=="), which RFC 9651 parsers
    // accept and serializers never write: the same bytes come out as "9w==".
    expect(fields['RateLimit-Policy']).toBe('"peruser";q=100;w=60;pk=:cHsdsRa89w==:');
    expect(parseRateLimitPolicy(fields['RateLimit-Policy'])).toEqual(
      parseRateLimitPolicy('"peruser";q=100;w=60;pk=:cHsdsRa894==:'),
    );
  });

  it('§3.2: RateLimit-Policy: "peruser";q=65535;qu="content-bytes";w=10;pk=:sdfjLJUOUH==:', () => {
    const pk = fromBase64('sdfjLJUOUH==');
    const fields = rateLimitHeaders(answer({ limits: [admitted('peruser', 65535, 10, 0, 3)] }), {
      quotaUnit: 'content-bytes',
      partitionKey: () => pk,
    });
    // Non-zero pad bits again ("H" before "=="): canonically "sdfjLJUOUA==".
    expect(fields['RateLimit-Policy']).toBe(
      '"peruser";q=65535;qu="content-bytes";w=10;pk=:sdfjLJUOUA==:',
    );
    expect(parseRateLimitPolicy(fields['RateLimit-Policy'])).toEqual(
      parseRateLimitPolicy('"peruser";q=65535;qu="content-bytes";w=10;pk=:sdfjLJUOUH==:'),
    );
  });

  it('§4 and §4.2: RateLimit: "default";r=50;t=30', () => {
    const fields = rateLimitHeaders(answer({ limits: [admitted('default', 100, 60, 50, 30)] }));
    expect(fields.RateLimit).toBe('"default";r=50;t=30');
  });

  it('§4.2: RateLimit: "default";r=999;pk=:dHJpYWwxMjEzMjM=: (no time window)', () => {
    // A limit without a reset time has no t; pk 'key' sends the counted key's bytes.
    const fields = rateLimitHeaders(
      answer({
        limits: [limit({ rule: 'default', key: 'trial121323', limit: 1000, remaining: 999 })],
      }),
      { partitionKey: 'key' },
    );
    expect(fields.RateLimit).toBe('"default";r=999;pk=:dHJpYWwxMjEzMjM=:');
    expect(fields['RateLimit-Policy']).toBe('"default";q=1000;pk=:dHJpYWwxMjEzMjM=:');
  });

  it('§4.2: RateLimit: "default";r=300000000;t=60;pk=:QXBwLTk5OQ==:', () => {
    const fields = rateLimitHeaders(
      answer({ limits: [admitted('default', 500_000_000, 60, 300_000_000, 60)] }),
      { partitionKey: () => 'App-999' },
    );
    expect(fields.RateLimit).toBe('"default";r=300000000;t=60;pk=:QXBwLTk5OQ==:');
  });

  it('§6: RateLimit: "problemPolicy";r=0;t=10 (admitted with nothing left)', () => {
    const fields = rateLimitHeaders(answer({ limits: [admitted('problemPolicy', 5, 10, 0, 10)] }));
    expect(fields.RateLimit).toBe('"problemPolicy";r=0;t=10');
    expect(fields['Retry-After']).toBeUndefined();
  });

  it('§7: RateLimit: "default";r=1;t=7', () => {
    const fields = rateLimitHeaders(answer({ limits: [admitted('default', 10, 10, 1, 7)] }));
    expect(fields.RateLimit).toBe('"default";r=1;t=7');
  });

  it('§8.5: RateLimit: "daily";r=1;t=86400', () => {
    const fields = rateLimitHeaders(answer({ limits: [admitted('daily', 100, 86400, 1, 86400)] }));
    expect(fields.RateLimit).toBe('"daily";r=1;t=86400');
  });

  it('§8.5: RateLimit-Policy: "somepolicy";q=10000;w=1000 with RateLimit: "somepolicy";r=10000;t=10', () => {
    const fields = rateLimitHeaders(
      answer({ limits: [admitted('somepolicy', 10000, 1000, 10000, 10)] }),
    );
    expect(fields['RateLimit-Policy']).toBe('"somepolicy";q=10000;w=1000');
    expect(fields.RateLimit).toBe('"somepolicy";r=10000;t=10');
  });

  it('B.1.1: RateLimit: "default";r=0;t=50, then "default";r=0;t=48 on 200 responses', () => {
    const first = rateLimitHeaders(answer({ limits: [admitted('default', 10, 60, 0, 50)] }));
    const second = rateLimitHeaders(answer({ limits: [admitted('default', 10, 60, 0, 48)] }));
    expect(first.RateLimit).toBe('"default";r=0;t=50');
    expect(second.RateLimit).toBe('"default";r=0;t=48');
  });

  it('B.1.2: RateLimit: "dayLimit";r=100;t=36000 (closest of an hourly and a daily limit)', () => {
    // 5000 a day and 1000 an hour; 4900 used in 14 hours: the daily limit is closest.
    const fields = rateLimitHeaders(
      answer({
        limits: [
          admitted('hourLimit', 1000, 3600, 700, 1800),
          admitted('dayLimit', 5000, 86400, 100, 36000),
        ],
      }),
      { serviceLimits: 'closest' },
    );
    expect(fields.RateLimit).toBe('"dayLimit";r=100;t=36000');
  });

  it('B.1.3: RateLimit-Policy: "basic";q=100;w=60 with "basic";r=60;t=58, then "basic";r=20;t=56', () => {
    const first = rateLimitHeaders(answer({ limits: [admitted('basic', 100, 60, 60, 58)] }));
    const second = rateLimitHeaders(answer({ limits: [admitted('basic', 100, 60, 20, 56)] }));
    expect(first['RateLimit-Policy']).toBe('"basic";q=100;w=60');
    expect(first.RateLimit).toBe('"basic";r=60;t=58');
    expect(second['RateLimit-Policy']).toBe('"basic";q=100;w=60');
    expect(second.RateLimit).toBe('"basic";r=20;t=56');
  });

  it('B.1.4: a 429 with Retry-After 5 s after Date and RateLimit: "default";r=0;t=5', () => {
    // The draft's Retry-After is an HTTP-date 5 s after Date; delay-seconds say the same.
    const fields = rateLimitHeaders(
      answer({
        allowed: false,
        retryAfter: s(5),
        limits: [
          limit({
            rule: 'default',
            limit: 10,
            remaining: 0,
            window: s(60),
            resetAfter: s(5),
            exceeded: true,
          }),
        ],
      }),
    );
    expect(fields['Retry-After']).toBe('5');
    expect(fields.RateLimit).toBe('"default";r=0;t=5');
  });

  it('B.2.1: RateLimit: "fixedwindow";r=99;t=50 with RateLimit-Policy: "fixedwindow";q=100;w=60', () => {
    const fields = rateLimitHeaders(answer({ limits: [admitted('fixedwindow', 100, 60, 99, 50)] }));
    expect(fields.RateLimit).toBe('"fixedwindow";r=99;t=50');
    expect(fields['RateLimit-Policy']).toBe('"fixedwindow";q=100;w=60');
  });

  it('B.2.2: RateLimit-Policy: "dynamic";q=100;w=60 with RateLimit: "dynamic";r=9;t=50', () => {
    const fields = rateLimitHeaders(answer({ limits: [admitted('dynamic', 100, 60, 9, 50)] }));
    expect(fields['RateLimit-Policy']).toBe('"dynamic";q=100;w=60');
    expect(fields.RateLimit).toBe('"dynamic";r=9;t=50');
  });

  it('B.2.3: a 429 with RateLimit-Policy: "dynamic";q=15;w=20 and RateLimit: "dynamic";r=0;t=20', () => {
    const fields = rateLimitHeaders(
      answer({
        allowed: false,
        retryAfter: s(20),
        limits: [
          limit({
            rule: 'dynamic',
            limit: 15,
            remaining: 0,
            window: s(20),
            resetAfter: s(20),
            exceeded: true,
          }),
        ],
      }),
    );
    expect(fields['RateLimit-Policy']).toBe('"dynamic";q=15;w=20');
    expect(fields.RateLimit).toBe('"dynamic";r=0;t=20');
    // The draft's response has no Retry-After; a denial here always carries one.
    expect(fields['Retry-After']).toBe('20');
  });

  it('B.3: a 429 with Retry-After: 20, RateLimit-Policy: "dynamic";q=100;w=60, RateLimit: "dynamic";r=15;t=40', () => {
    // Denied although the limit is not exhausted (e.g. an attack block): t stays the limit's.
    const fields = rateLimitHeaders(
      answer({ allowed: false, retryAfter: s(20), limits: [admitted('dynamic', 100, 60, 15, 40)] }),
    );
    expect(fields['Retry-After']).toBe('20');
    expect(fields['RateLimit-Policy']).toBe('"dynamic";q=100;w=60');
    expect(fields.RateLimit).toBe('"dynamic";r=15;t=40');
  });

  it('B.3.1: RateLimit-Policy: "hour";q=1000;w=3600, "day";q=5000;w=86400 with RateLimit: "day";r=100;t=36000', () => {
    const fields = rateLimitHeaders(
      answer({
        limits: [admitted('hour', 1000, 3600, 900, 1200), admitted('day', 5000, 86400, 100, 36000)],
      }),
      { serviceLimits: 'closest' },
    );
    expect(fields['RateLimit-Policy']).toBe('"hour";q=1000;w=3600, "day";q=5000;w=86400');
    expect(fields.RateLimit).toBe('"day";r=100;t=36000');
  });
});

describe('rateLimitHeaders', () => {
  it('lists every applied limit by default, in the order of the answer', () => {
    const fields = rateLimitHeaders(
      answer({
        limits: [admitted('ip-10', 10, 60, 7, 42), admitted('user-100', 100, 3600, 3, 1800)],
      }),
    );
    expect(fields['RateLimit-Policy']).toBe('"ip-10";q=10;w=60, "user-100";q=100;w=3600');
    expect(fields.RateLimit).toBe('"ip-10";r=7;t=42, "user-100";r=3;t=1800');
    expect(fields['Retry-After']).toBeUndefined();
  });

  it('answers a denial with Retry-After rounded up, and t of the exceeded limit equal to it', () => {
    const fields = rateLimitHeaders(
      answer({
        allowed: false,
        retryAfter: s(2, 100_000_000),
        limits: [
          limit({
            rule: 'ip-5',
            limit: 5,
            remaining: 0,
            window: s(10),
            resetAfter: s(9, 500_000_000),
            exceeded: true,
          }),
          admitted('user-100', 100, 3600, 40, 1800),
        ],
      }),
    );
    expect(fields['Retry-After']).toBe('3');
    expect(fields.RateLimit).toBe('"ip-5";r=0;t=3, "user-100";r=40;t=1800');
    expect(fields['RateLimit-Policy']).toBe('"ip-5";q=5;w=10, "user-100";q=100;w=3600');
  });

  it('picks the exceeded limit as the closest one on a denial', () => {
    const fields = rateLimitHeaders(
      answer({
        allowed: false,
        retryAfter: s(4),
        limits: [
          admitted('a', 10, 60, 0, 30),
          limit({
            rule: 'b',
            limit: 5,
            remaining: 0,
            window: s(10),
            resetAfter: s(8),
            exceeded: true,
          }),
        ],
      }),
      { serviceLimits: 'closest' },
    );
    expect(fields.RateLimit).toBe('"b";r=0;t=4');
  });

  it('gives Retry-After at least 1, and from the exceeded reset when retry_after is unset', () => {
    const zero = rateLimitHeaders(answer({ allowed: false, retryAfter: s(0), limits: [] }));
    expect(zero['Retry-After']).toBe('1');
    const unset = rateLimitHeaders(
      answer({
        allowed: false,
        limits: [
          limit({ rule: 'x', limit: 1, window: s(60), resetAfter: s(41, 1), exceeded: true }),
        ],
      }),
    );
    expect(unset['Retry-After']).toBe('42');
  });

  it('leaves shadow limits out, and sends nothing when only shadow limits applied', () => {
    const mixed = rateLimitHeaders(
      answer({
        limits: [
          limit({
            rule: 'shadow-1',
            limit: 1,
            remaining: 0,
            window: s(60),
            shadow: true,
            exceeded: true,
          }),
          admitted('real', 10, 60, 9, 60),
        ],
      }),
    );
    expect(mixed['RateLimit-Policy']).toBe('"real";q=10;w=60');
    expect(mixed.RateLimit).toBe('"real";r=9;t=60');
    const onlyShadow = rateLimitHeaders(
      answer({ limits: [limit({ rule: 'shadow-1', limit: 1, window: s(60), shadow: true })] }),
    );
    expect(onlyShadow).toEqual({});
  });

  it('sends nothing when no limit applied', () => {
    expect(rateLimitHeaders(answer({ limits: [] }))).toEqual({});
  });

  it('sends no RateLimit fields for a degraded answer, only Retry-After when it denies', () => {
    const limits = [admitted('ip-5', 5, 10, 4, 10)];
    expect(rateLimitHeaders(answer({ degraded: true, limits }))).toEqual({});
    expect(
      rateLimitHeaders(answer({ allowed: false, degraded: true, retryAfter: s(1), limits })),
    ).toEqual({ 'Retry-After': '1' });
  });

  it('escapes " and \\ and percent-encodes control and non-ASCII characters in names', () => {
    const fields = rateLimitHeaders(
      answer({
        limits: [
          admitted('a"b\\c', 1, 1, 1, 1),
          admitted('tab\there\r\n', 1, 1, 1, 1),
          admitted('quötä 🚀', 1, 1, 1, 1),
          admitted('lone\ud800', 1, 1, 1, 1),
        ],
      }),
    );
    expect(fields['RateLimit-Policy']).toBe(
      [
        '"a\\"b\\\\c";q=1;w=1',
        '"tab%09here%0D%0A";q=1;w=1',
        '"qu%C3%B6t%C3%A4 %F0%9F%9A%80";q=1;w=1',
        '"lone%EF%BF%BD";q=1;w=1',
      ].join(', '),
    );
    expect(parseRateLimitPolicy(fields['RateLimit-Policy'])?.map((p) => p.policy)).toEqual([
      'a"b\\c',
      'tab%09here%0D%0A',
      'qu%C3%B6t%C3%A4 %F0%9F%9A%80',
      'lone%EF%BF%BD',
    ]);
  });

  it('keeps one item per name when two names serialize alike (the one with fewer remaining)', () => {
    const fields = rateLimitHeaders(
      answer({ limits: [admitted('é', 10, 60, 8, 10), admitted('%C3%A9', 20, 60, 3, 20)] }),
    );
    expect(fields['RateLimit-Policy']).toBe('"%C3%A9";q=20;w=60');
    expect(fields.RateLimit).toBe('"%C3%A9";r=3;t=20');
  });

  it('clamps huge and invalid numbers into sf-integer range and rounds durations up', () => {
    const fields = rateLimitHeaders(
      answer({
        allowed: false,
        retryAfter: s(1e18),
        limits: [
          limit({
            rule: 'huge',
            limit: 2 ** 63,
            remaining: 2 ** 62,
            window: s(1e17),
            resetAfter: s(1e16),
          }),
          limit({
            rule: 'odd',
            limit: -5,
            remaining: Number.NaN,
            window: s(0, 1),
            resetAfter: s(-3),
          }),
          limit({
            rule: 'sub',
            limit: 3.7,
            remaining: 1.2,
            window: s(0, 500_000_000),
            resetAfter: s(1, 200_000_000),
          }),
          limit({ rule: 'nowindow', limit: 1, window: s(0) }),
        ],
      }),
    );
    expect(fields['Retry-After']).toBe('999999999999999');
    expect(fields['RateLimit-Policy']).toBe(
      '"huge";q=999999999999999;w=999999999999999, "odd";q=0;w=1, "sub";q=3;w=1, "nowindow";q=1',
    );
    expect(fields.RateLimit).toBe(
      '"huge";r=999999999999999;t=999999999999999, "odd";r=0;t=0, "sub";r=1;t=2, "nowindow";r=0',
    );
  });

  it('sends no pk unless asked: the counted IP or user id stays private by default', () => {
    const fields = rateLimitHeaders(
      answer({ limits: [limit({ rule: 'ip', key: '203.0.113.9', limit: 1, window: s(1) })] }),
    );
    expect(fields['RateLimit-Policy']).toBe('"ip";q=1;w=1');
    expect(fields.RateLimit).toBe('"ip";r=0');
  });

  it('hmacPartitionKey gives a stable key per scope and identifier that does not reveal it', () => {
    const pk = hmacPartitionKey('secret of this backend');
    const ip = (key: string) => limit({ rule: 'ip', key, limit: 1, window: s(1) });
    const a = rateLimitHeaders(answer({ limits: [ip('203.0.113.9')] }), { partitionKey: pk });
    const again = rateLimitHeaders(answer({ limits: [ip('203.0.113.9')] }), { partitionKey: pk });
    const other = rateLimitHeaders(answer({ limits: [ip('203.0.113.10')] }), { partitionKey: pk });
    const key = parseRateLimit(a.RateLimit)![0]!.partitionKey!;
    expect(key).toHaveLength(12);
    expect(a).toEqual(again);
    expect(other.RateLimit).not.toBe(a.RateLimit);
    expect(Buffer.from(key).toString('latin1')).not.toContain('203.0.113.9');
    expect(() => hmacPartitionKey('')).toThrow(TypeError);
  });
});

describe('parseRateLimitPolicy and parseRateLimit', () => {
  it('read the draft examples, with a repeated field as several lines (FAQ 8)', () => {
    expect(
      parseRateLimitPolicy('"peruser";q=65535;qu="content-bytes";w=10;pk=:sdfjLJUOUH==:'),
    ).toEqual([
      expect.objectContaining({
        policy: 'peruser',
        quota: 65535,
        window: 10,
        quotaUnit: 'content-bytes',
      }),
    ]);
    const policies = parseRateLimitPolicy([
      '"sliding";q=100;w=60;burst=1000',
      '"fixed";q=5000;w=3600;burst=0',
    ]);
    expect(policies?.map((p) => [p.policy, p.quota, p.window, p.parameters.get('burst')])).toEqual([
      ['sliding', 100, 60, { type: 'integer', value: 1000 }],
      ['fixed', 5000, 3600, { type: 'integer', value: 0 }],
    ]);
    expect(parseRateLimit('"sliding";r=50;t=44')).toEqual([
      expect.objectContaining({ policy: 'sliding', remaining: 50, effectiveWindow: 44 }),
    ]);
  });

  it('treat malformed fields as absent, as the draft says clients must (§7)', () => {
    for (const bad of [
      '',
      'default;q=100;w=10', // a token, not an sf-string (the syntax of draft 07)
      '"a";w=10', // no q
      '"a";q=-1',
      '"a";q=1;w=0',
      '"a";q=1.5',
      '"a";q=1;qu=requests',
      '"a";q=1,',
      '("a" "b");q=1',
      '"a";q=1;pk="not bytes"',
      '"é";q=1',
      '"a";q=1234567890123456',
    ])
      expect(parseRateLimitPolicy(bad), bad).toBeUndefined();
    for (const bad of [
      '"a"',
      '"a";r=1;t=-1',
      '"a";r=1;t=1.0',
      '"a";r=1 "b";r=2',
      '"problemPolicy";r=0, t=10',
    ])
      expect(parseRateLimit(bad), bad).toBeUndefined();
    expect(parseRateLimit(undefined)).toBeUndefined();
  });

  it('read sf-binary as strict base64 (RFC 9651, section 4.2.7)', () => {
    const pk = (b64: string) => parseRateLimit(`"a";r=1;pk=:${b64}:`)?.[0]?.partitionKey;
    for (const bad of [
      'Q',
      'Y=Q=',
      '====',
      '=',
      'QQ=',
      'QUI==',
      'QUJD=',
      'QU JD',
      'QQ===',
      'Q===',
      'QUJDRA'.slice(0, 5),
    ])
      expect(pk(bad), bad).toBeUndefined();
    // Padding may be missing and pad bits non-zero, as the RFC asks parsers to accept.
    expect(pk('')).toEqual(new Uint8Array());
    expect(pk('QQ==')).toEqual(new Uint8Array([0x41]));
    expect(pk('QQ')).toEqual(new Uint8Array([0x41]));
    expect(pk('QUI=')).toEqual(new Uint8Array([0x41, 0x42]));
    expect(pk('QUI')).toEqual(new Uint8Array([0x41, 0x42]));
    expect(pk('QR==')).toEqual(new Uint8Array([0x41]));
    expect(pk('QUJD')).toEqual(new Uint8Array([0x41, 0x42, 0x43]));
  });
});

// ---- A strict validator of what rateLimitHeaders writes, from RFC 9651's ABNF, written apart
// from the package's parser so that neither can hide the other's mistake. ----

const KEY = /[a-z*][a-z0-9_\-.*]*/y;
const INTEGER = /-?[0-9]{1,15}(?![0-9.])/y;
const STRING = /"(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])*"/y;
const BINARY = /:(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?:/y;
const OWS_COMMA_OWS = /[ \t]*,[ \t]*/y;

type Bare = { kind: 'integer'; value: number } | { kind: 'string' | 'binary'; raw: string };
interface Item {
  name: string;
  params: Map<string, Bare>;
}

/**
 * sf-list of sf-items whose bare item is an sf-string and whose parameter values are
 * integers, strings or byte sequences; throws at the first character the grammar refuses.
 */
function strictList(field: string): Item[] {
  let pos = 0;
  const take = (re: RegExp): string | undefined => {
    re.lastIndex = pos;
    const m = re.exec(field);
    if (!m) return undefined;
    pos = re.lastIndex;
    return m[0];
  };
  const must = (re: RegExp, what: string): string => {
    const got = take(re);
    if (got === undefined)
      throw new Error(`${what} expected at ${pos} of ${JSON.stringify(field)}`);
    return got;
  };
  const items: Item[] = [];
  for (;;) {
    const name = must(STRING, 'sf-string');
    const params = new Map<string, Bare>();
    while (field[pos] === ';') {
      pos++;
      const key = must(KEY, 'key');
      if (params.has(key)) throw new Error(`repeated parameter ${key} in ${field}`);
      if (field[pos] !== '=') throw new Error(`parameter ${key} without a value in ${field}`);
      pos++;
      const int = take(INTEGER);
      if (int !== undefined) params.set(key, { kind: 'integer', value: Number(int) });
      else {
        const str = take(STRING);
        if (str !== undefined) params.set(key, { kind: 'string', raw: str });
        else params.set(key, { kind: 'binary', raw: must(BINARY, 'bare item') });
      }
    }
    items.push({ name, params });
    if (pos === field.length) return items;
    must(OWS_COMMA_OWS, '","');
  }
}

function integerParam(item: Item, key: string, min: number, required: boolean): void {
  const p = item.params.get(key);
  if (p === undefined) {
    if (required) throw new Error(`${item.name} has no ${key}`);
    return;
  }
  if (p.kind !== 'integer' || p.value < min) throw new Error(`${item.name}: bad ${key}`);
}

function typedParam(item: Item, key: string, kind: 'string' | 'binary'): void {
  const p = item.params.get(key);
  if (p !== undefined && p.kind !== kind) throw new Error(`${item.name}: ${key} is not ${kind}`);
}

/** The draft's rules on top of the syntax: §3.1 for policies, §4.1 for service limits. */
function validate(response: CheckLimitResponse, fields: ReturnType<typeof rateLimitHeaders>) {
  const retry = fields['Retry-After'];
  expect(retry === undefined).toBe(response.allowed);
  if (retry !== undefined) expect(retry).toMatch(/^[1-9][0-9]{0,14}$/);
  const counted = !response.degraded && response.limits.some((l) => !l.shadow);
  expect(fields['RateLimit-Policy'] !== undefined).toBe(counted);
  expect(fields.RateLimit !== undefined).toBe(counted);
  if (!counted) return;
  const policies = strictList(fields['RateLimit-Policy']!);
  const limits = strictList(fields.RateLimit!);
  for (const p of policies) {
    integerParam(p, 'q', 0, true);
    integerParam(p, 'w', 1, false);
    typedParam(p, 'qu', 'string');
    typedParam(p, 'pk', 'binary');
    expect([...p.params.keys()].every((k) => ['q', 'w', 'qu', 'pk'].includes(k))).toBe(true);
  }
  for (const l of limits) {
    integerParam(l, 'r', 0, true);
    integerParam(l, 't', 0, false);
    typedParam(l, 'pk', 'binary');
    expect([...l.params.keys()].every((k) => ['r', 't', 'pk'].includes(k))).toBe(true);
  }
  const names = policies.map((p) => p.name);
  expect(new Set(names).size).toBe(names.length);
  expect(limits.every((l) => names.includes(l.name))).toBe(true);
  // The package's own parser reads back what it wrote.
  expect(parseRateLimitPolicy(fields['RateLimit-Policy'])).toHaveLength(policies.length);
  expect(parseRateLimit(fields.RateLimit)).toHaveLength(limits.length);
}

describe('rateLimitHeaders with any answer (fast-check)', () => {
  const anyNumber = fc.oneof(
    fc.integer(),
    fc.nat(),
    fc.double(),
    fc.constantFrom(2 ** 63, -(2 ** 63), Number.MAX_SAFE_INTEGER, 1e15, 999_999_999_999_999),
  );
  const anyDuration = fc.option(
    fc.record({
      seconds: fc.oneof(fc.integer({ min: -10, max: 100_000 }), anyNumber),
      nanos: fc.integer({ min: -999_999_999, max: 999_999_999 }),
    }),
    { nil: undefined },
  );
  const anyName = fc.oneof(
    fc.string(),
    fc.string({ unit: 'binary' }),
    fc.string({ unit: fc.nat(0xffff).map((c) => String.fromCharCode(c)) }),
    fc.stringMatching(/^[A-Za-z0-9_.:-]{1,16}$/),
  );
  const anyLimit = fc.record({
    rule: anyName,
    scope: fc.constantFrom(
      Scope.SCOPE_IP,
      Scope.SCOPE_USER,
      Scope.SCOPE_API_KEY,
      Scope.SCOPE_RESOURCE,
    ),
    key: fc.string(),
    limit: anyNumber,
    remaining: anyNumber,
    window: anyDuration,
    resetAfter: anyDuration,
    shadow: fc.boolean(),
    exceeded: fc.boolean(),
  });
  const anyAnswer = fc.record({
    allowed: fc.boolean(),
    limits: fc.array(anyLimit, { maxLength: 6 }),
    retryAfter: anyDuration,
    degraded: fc.boolean(),
    throttleFactor: fc.double({ min: 0, max: 1, noNaN: true }),
  });
  const anyOptions: fc.Arbitrary<RateLimitHeaderOptions> = fc.record(
    {
      serviceLimits: fc.constantFrom('all' as const, 'closest' as const),
      partitionKey: fc.oneof(
        fc.constant(false as const),
        fc.constant('key' as const),
        fc.uint8Array({ maxLength: 40 }).map((bytes) => () => bytes),
        fc.constant(hmacPartitionKey('k')),
      ),
      quotaUnit: anyName,
    },
    { requiredKeys: [] },
  );

  it('writes syntactically valid Structured Field Lists that follow the draft', () => {
    fc.assert(
      fc.property(anyAnswer, anyOptions, (response, options) => {
        validate(response, rateLimitHeaders(response, options));
      }),
      { numRuns: 500 },
    );
  });
});
