import { describe, expect, it } from 'vitest';
import { validateFigure } from '../../src/core/validateFigure.js';
import { validateText } from '../../src/core/validateText.js';
import { ValidationError } from '../../src/errors.js';
import { validateCheckLimit } from '../../src/limits/validateCheckLimit.js';
import { validateRule } from '../../src/limits/validateRule.js';
import { validateThresholds } from '../../src/load/ThrottlePolicy.js';
import { validateHost, validateHosts, validateReport } from '../../src/load/validateReport.js';
import { domainRule, limitInput } from '../support/domain.js';

/** The field a ValidationError thrown by `fn` names; fails when nothing is thrown. */
function fieldOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return (err as ValidationError).field;
  }
  throw new Error('nothing was thrown');
}

const figures = {
  host: 'exec-1',
  cpuPercent: 10,
  memoryPercent: 10,
  diskPercent: 10,
  diskReadBytesPerSec: 0,
  diskWriteBytesPerSec: 0,
  netRxBytesPerSec: 0,
  netTxBytesPerSec: 0,
  loadAvg1m: 0.5,
};

describe('validateText', () => {
  it.each([
    ['a\u0000b', /NUL character \(U\+0000\), found at index 1/],
    ['\u0000', /NUL/],
    ['x\ud800', /lone surrogate U\+D800 at index 1/],
    ['\udc00y', /lone surrogate U\+DC00 at index 0/],
    ['ab\udbff', /lone surrogate U\+DBFF/],
  ])('refuses %j naming the field', (value, reason) => {
    expect(() => validateText(value, 'user_id')).toThrow(reason);
    expect(fieldOf(() => validateText(value, 'user_id'))).toBe('user_id');
  });

  it.each(['', 'plain', 'é', '\ud83d\ude00 surrogate pair', '\ufffd', '\u0001\u007f', '日本'])(
    'accepts %j',
    (value) => {
      expect(validateText(value, 'f')).toBe(value);
    },
  );

  it('bounds UTF-8 bytes, not characters', () => {
    expect(validateText('é'.repeat(128), 'f', 256)).toBe('é'.repeat(128));
    expect(() => validateText('é'.repeat(129), 'f', 256)).toThrow('f: must be at most 256 bytes');
  });
});

describe('validateFigure', () => {
  it.each([0, -0, 1, 2 ** -1022, -(2 ** -1022), 1e308, 42.5])('accepts %d', (v) => {
    expect(validateFigure(v, 'f')).toBe(v);
  });

  it.each([5e-324, -5e-324, 2 ** -1023, 1e-310, NaN, Infinity, -Infinity])('refuses %d', (v) => {
    expect(fieldOf(() => validateFigure(v, 'cpu_percent'))).toBe('cpu_percent');
  });
});

describe('every validator refuses text the database cannot hold, naming the field', () => {
  it.each([
    ['ip', { ip: '10.0.0.1\u0000' }],
    ['user_id', { userId: 'a\u0000b' }],
    ['api_key', { apiKey: 'k\u0000' }],
    ['resource', { resource: '\ud800' }],
    ['request_id', { userId: 'u', requestId: 'r\u0000' }],
    ['path', { userId: 'u', path: '/a\u0000' }],
    ['user_agent', { userId: 'u', userAgent: '\udfff' }],
    ['host', { userId: 'u', host: 'h\u0000' }],
  ])('CheckLimit %s', (field, input) => {
    expect(fieldOf(() => validateCheckLimit(limitInput(input)))).toBe(field);
  });

  it.each([
    ['rule.name', { name: 'r\u0000' }],
    ['rule.match', { match: 'a\u0000' }],
    ['rule.match', { match: '\ud800' }],
    ['rule.description', { description: 'd\u0000' }],
  ])('rules: %s', (field, rule) => {
    expect(fieldOf(() => validateRule(domainRule(rule)))).toBe(field);
  });

  it('load hosts: one host, each of a list by index, and a report', () => {
    expect(fieldOf(() => validateHost('h\u0000'))).toBe('host');
    expect(fieldOf(() => validateHosts(['ok', 'b\u0000']))).toBe('hosts[1]');
    expect(fieldOf(() => validateHosts(['x'.repeat(257)]))).toBe('hosts[0]');
    expect(fieldOf(() => validateReport({ ...figures, host: '\ud800' }))).toBe('host');
  });
});

describe('numbers past what the service represents', () => {
  it('refuses a rule window past 2^53 - 1 ms naming rule.window', () => {
    expect(validateRule(domainRule({ windowMs: 2 ** 53 - 1 })).windowMs).toBe(2 ** 53 - 1);
    expect(fieldOf(() => validateRule(domainRule({ windowMs: 2 ** 53 + 2 })))).toBe('rule.window');
    expect(fieldOf(() => validateRule(domainRule({ windowMs: (2 ** 53 - 1) * 1000 })))).toBe(
      'rule.window',
    );
  });
});

describe('load figures', () => {
  it.each([
    ['cpu_percent', { cpuPercent: 5e-324 }],
    ['memory_percent', { memoryPercent: NaN }],
    ['disk_percent', { diskPercent: Infinity }],
    ['disk_read_bytes_per_sec', { diskReadBytesPerSec: 1e-320 }],
    ['net_tx_bytes_per_sec', { netTxBytesPerSec: -Infinity }],
    ['load_avg_1m', { loadAvg1m: 5e-324 }],
  ])('a report refuses %s', (field, r) => {
    expect(fieldOf(() => validateReport({ ...figures, ...r }))).toBe(field);
  });

  it('a report takes 0 and -0', () => {
    expect(validateReport({ ...figures, cpuPercent: 0, loadAvg1m: -0 }).cpuPercent).toBe(0);
  });

  it('thresholds refuse a subnormal or non-finite one, naming it', () => {
    const t = { slight: 70, moderate: 80, heavy: 90, critical: 95 };
    expect(fieldOf(() => validateThresholds({ ...t, slight: 5e-324 }))).toBe('thresholds.slight');
    expect(fieldOf(() => validateThresholds({ ...t, critical: NaN }))).toBe('thresholds.critical');
  });
});

describe('validateRule', () => {
  it('refuses the names that denials of attack blocks and command quotas carry', () => {
    for (const name of ['attack-block', 'command:shell', 'command:*']) {
      expect(() => validateRule(domainRule({ name })), name).toThrowError(
        expect.objectContaining({ field: 'rule.name' }),
      );
    }
    expect(validateRule(domainRule({ name: 'attack-blocker' })).name).toBe('attack-blocker');
    expect(validateRule(domainRule({ name: 'commands:shell' })).name).toBe('commands:shell');
  });
});
