import { describe, expect, it } from 'vitest';
import { validateRule } from '../../src/limits/validateRule.js';
import { validateCheckLimit } from '../../src/limits/validateCheckLimit.js';
import { domainRule, limitInput } from '../support/domain.js';
import { checkLimitFromProto } from '../../src/grpc/checkLimitMapping.js';
import { CheckLimitRequest } from '../../clients/typescript/src/gen/quota/v1/quota_service.js';
import { fieldOf } from '../support/fieldOf.js';

const rule = domainRule;

describe('validateRule', () => {
  it('fills the default match and keeps a valid rule', () => {
    expect(validateRule(rule({ match: '' })).match).toBe('*');
  });

  it.each([
    ['an empty name', 'rule.name', rule({ name: '' })],
    ['a name with spaces', 'rule.name', rule({ name: 'a b' })],
    ['a zero window', 'rule.window', rule({ windowMs: 0 })],
    ['no window and no period', 'rule.window', rule({ windowMs: null })],
    ['a window and a period', 'rule.window', rule({ period: 'daily' })],
    [
      'a token bucket per period',
      'rule.algorithm',
      rule({ windowMs: null, period: 'daily', algorithm: 'token_bucket' }),
    ],
    ['a zero limit', 'rule.limit', rule({ limit: 0 })],
    ['an unknown scope', 'rule.scope', rule({ scope: 'planet' as never })],
    ['an over-long match', 'rule.match', rule({ match: 'x'.repeat(257) })],
  ])('rejects %s naming %s', (_what, field, r) => {
    expect(fieldOf(() => validateRule(r))).toBe(field);
  });

  it('counts a period rule per calendar period whatever algorithm was named', () => {
    expect(validateRule(rule({ windowMs: null, period: 'weekly' })).algorithm).toBe('fixed_window');
  });
});

describe('validateCheckLimit', () => {
  const input = limitInput();

  it('turns hits 0 into 1 (the proto mapping, where proto3 defaults end)', () => {
    const request = CheckLimitRequest.fromPartial({ userId: 'u', hits: 0 });
    expect(validateCheckLimit(checkLimitFromProto(request)).hits).toBe(1);
  });

  it('needs at least one identifier', () => {
    expect(fieldOf(() => validateCheckLimit(input))).toBe('ip|user_id|api_key|resource');
  });

  it('measures identifiers in bytes, not characters', () => {
    expect(
      fieldOf(() => validateCheckLimit({ ...input, userId: 'é'.repeat(128) })),
    ).toBeUndefined();
    expect(fieldOf(() => validateCheckLimit({ ...input, userId: 'é'.repeat(129) }))).toBe(
      'user_id',
    );
  });
});
