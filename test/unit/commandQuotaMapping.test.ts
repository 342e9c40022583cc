import { describe, expect, it } from 'vitest';
import {
  checkCommandQuotaFromProto,
  checkCommandQuotaToProto,
  commandRuleFromProto,
  commandRuleToProto,
  periodUsageToProto,
  quotaStatusToProto,
  recordExecutionFromProto,
  ruleFilterFromProto,
  ruleUserFromProto,
} from '../../src/grpc/commandQuotaMapping.js';
import type {
  CommandQuotaResult,
  CommandQuotaRule as DomainRule,
  ExecutionSummary as DomainSummary,
} from '../../src/quotas/types.js';
import { validateCommandRule } from '../../src/quotas/validateCommandRule.js';
import { validateCommandQuota, validateExecution } from '../../src/quotas/validateQuotaInput.js';
import { ListCommandQuotaRulesRequest } from '../../clients/typescript/src/gen/quota/v1/admin_service.js';
import {
  CheckCommandQuotaRequest,
  CheckCommandQuotaResponse,
  GetQuotaStatusResponse,
  RecordExecutionRequest,
} from '../../clients/typescript/src/gen/quota/v1/quota_service.js';
import { CommandQuotaRule, Period } from '../../clients/typescript/src/gen/quota/v1/types.js';
import { fieldOf } from '../support/fieldOf.js';

const RESETS = new Date('2030-01-02T00:00:00.000Z');

function domainRule(r: Partial<DomainRule> = {}): DomainRule {
  return {
    userId: 'alice',
    commandType: 'shell',
    limits: { daily: 10, weekly: 0, monthly: null },
    cpuEstimatePercent: 150.5,
    memoryEstimateBytes: 2 ** 40,
    ...r,
  };
}

/** Through the wire and back, as a client's message reaches a handler. */
function overWire(rule: CommandQuotaRule): CommandQuotaRule {
  return CommandQuotaRule.decode(CommandQuotaRule.encode(rule).finish());
}

describe('CommandQuotaRule mapping', () => {
  it('round-trips a domain rule through the wire, keeping 0 apart from unlimited', () => {
    const rule = domainRule();
    const proto = overWire(commandRuleToProto(rule));
    expect(proto.daily).toBe(10);
    expect(proto.weekly).toBe(0);
    expect(proto.monthly).toBeUndefined();
    expect(commandRuleFromProto(proto)).toEqual(rule);
  });

  it('round-trips through proto3 JSON too', () => {
    const rule = domainRule({ limits: { daily: null, weekly: 0, monthly: 1_000_000 } });
    const json = CommandQuotaRule.toJSON(commandRuleToProto(rule));
    expect(json).toMatchObject({ weekly: 0, monthly: 1_000_000 });
    expect(json).not.toHaveProperty('daily');
    expect(commandRuleFromProto(CommandQuotaRule.fromJSON(json))).toEqual(rule);
  });

  it('round-trips the wildcards', () => {
    const rule = domainRule({ userId: '*', commandType: '*' });
    expect(commandRuleFromProto(overWire(commandRuleToProto(rule)))).toEqual(rule);
  });

  it('makes an empty user_id "*" and unset limits unlimited', () => {
    const rule = commandRuleFromProto(CommandQuotaRule.fromPartial({ commandType: 'code' }));
    expect(rule).toEqual({
      userId: '*',
      commandType: 'code',
      limits: { daily: null, weekly: null, monthly: null },
      cpuEstimatePercent: 0,
      memoryEstimateBytes: 0,
    });
    expect(validateCommandRule(rule)).toBe(rule);
  });

  it('requires the rule', () => {
    expect(fieldOf(() => commandRuleFromProto(undefined))).toBe('rule');
  });

  it.each([
    ['a negative daily limit', 'rule.daily', { commandType: 'shell', daily: -1 }],
    ['an empty command type', 'rule.command_type', { userId: 'alice' }],
    ['a command type with a space', 'rule.command_type', { commandType: 'a b' }],
    [
      'a negative cpu estimate',
      'rule.cpu_estimate_percent',
      { commandType: 'shell', cpuEstimatePercent: -1 },
    ],
  ])('leaves %s to the domain, which names %s', (_what, field, partial) => {
    const rule = commandRuleFromProto(CommandQuotaRule.fromPartial(partial));
    expect(fieldOf(() => validateCommandRule(rule))).toBe(field);
  });

  it('reads "*" for an empty user id of a delete, and empty list filters as none', () => {
    expect(ruleUserFromProto('')).toBe('*');
    expect(ruleUserFromProto('bob')).toBe('bob');
    expect(ruleFilterFromProto(ListCommandQuotaRulesRequest.fromPartial({}))).toEqual({
      userId: undefined,
      commandType: undefined,
    });
    expect(
      ruleFilterFromProto(
        ListCommandQuotaRulesRequest.fromPartial({ userId: '*', commandType: 'x' }),
      ),
    ).toEqual({ userId: '*', commandType: 'x' });
  });
});

describe('CheckCommandQuota mapping', () => {
  it('reads cost 0 as 1 and empty host and request_id as not given', () => {
    const input = checkCommandQuotaFromProto(
      CheckCommandQuotaRequest.fromPartial({ userId: 'alice', commandType: 'shell' }),
    );
    expect(input).toEqual({
      userId: 'alice',
      commandType: 'shell',
      host: undefined,
      requestId: undefined,
      cost: 1,
    });
    expect(validateCommandQuota(input)).toBe(input);
  });

  it('passes the given fields through', () => {
    expect(
      checkCommandQuotaFromProto(
        CheckCommandQuotaRequest.fromPartial({
          userId: 'alice',
          commandType: 'shell',
          host: 'exec-1',
          requestId: 'r-1',
          cost: 7,
        }),
      ),
    ).toEqual({ userId: 'alice', commandType: 'shell', host: 'exec-1', requestId: 'r-1', cost: 7 });
  });

  it('leaves a cost above the maximum to the domain', () => {
    const input = checkCommandQuotaFromProto(
      CheckCommandQuotaRequest.fromPartial({ userId: 'alice', commandType: 'shell', cost: 1001 }),
    );
    expect(fieldOf(() => validateCommandQuota(input))).toBe('cost');
  });

  const allowed: CommandQuotaResult = {
    allowed: true,
    reason: null,
    periods: [
      { period: 'daily', limit: 10, used: 3, remaining: 7, resetsAt: RESETS },
      { period: 'weekly', limit: null, used: 3, remaining: null, resetsAt: RESETS },
      { period: 'monthly', limit: 100, used: 100, remaining: 0, resetsAt: RESETS },
    ],
    tier: 'premium',
    throttleFactor: 0.8,
    delayMs: 200,
    reservationId: '0b9e3c1a-2f4d-4a6b-8c7d-1e2f3a4b5c6d',
    degraded: false,
  };

  it('maps an answer, unlimited periods as limit and remaining 0', () => {
    const proto = checkCommandQuotaToProto(allowed);
    expect(proto).toEqual({
      allowed: true,
      reason: '',
      periods: [
        {
          period: Period.PERIOD_DAILY,
          limit: 10,
          unlimited: false,
          used: 3,
          remaining: 7,
          resetsAt: RESETS,
        },
        {
          period: Period.PERIOD_WEEKLY,
          limit: 0,
          unlimited: true,
          used: 3,
          remaining: 0,
          resetsAt: RESETS,
        },
        {
          period: Period.PERIOD_MONTHLY,
          limit: 100,
          unlimited: false,
          used: 100,
          remaining: 0,
          resetsAt: RESETS,
        },
      ],
      tier: 'premium',
      throttleFactor: 0.8,
      delay: { seconds: 0, nanos: 200_000_000 },
      reservationId: allowed.reservationId,
      degraded: false,
    });
    // A valid message: it survives the wire unchanged, resets_at included.
    expect(
      CheckCommandQuotaResponse.decode(CheckCommandQuotaResponse.encode(proto).finish()),
    ).toEqual(proto);
  });

  it('maps a denial: no reservation is an empty id, the reason is kept', () => {
    const proto = checkCommandQuotaToProto({
      ...allowed,
      allowed: false,
      reason: 'QUOTA_EXCEEDED: weekly, monthly',
      delayMs: 0,
      reservationId: null,
    });
    expect(proto).toMatchObject({
      allowed: false,
      reason: 'QUOTA_EXCEEDED: weekly, monthly',
      delay: { seconds: 0, nanos: 0 },
      reservationId: '',
    });
  });

  it('maps the failure mode answer: no periods, degraded', () => {
    const proto = checkCommandQuotaToProto({
      ...allowed,
      allowed: false,
      reason: 'QUOTA_UNAVAILABLE',
      periods: [],
      delayMs: 0,
      reservationId: null,
      degraded: true,
    });
    expect(proto).toMatchObject({ periods: [], reason: 'QUOTA_UNAVAILABLE', degraded: true });
  });

  it('maps a period through JSON with its reset time', () => {
    const json = CheckCommandQuotaResponse.toJSON(checkCommandQuotaToProto(allowed)) as {
      periods: { period: string; unlimited?: boolean; resetsAt: string }[];
    };
    expect(json.periods[1]).toMatchObject({
      period: 'PERIOD_WEEKLY',
      unlimited: true,
      resetsAt: '2030-01-02T00:00:00.000Z',
    });
    expect(
      periodUsageToProto({ period: 'daily', limit: 0, used: 0, remaining: 0, resetsAt: RESETS }),
    ).toMatchObject({ limit: 0, unlimited: false, remaining: 0 });
  });
});

describe('RecordExecution mapping', () => {
  it('reads unset duration as 0, unset start and empty identifiers as not given', () => {
    const input = recordExecutionFromProto(
      RecordExecutionRequest.fromPartial({ userId: 'alice', commandType: 'shell' }),
    );
    expect(input).toEqual({
      reservationId: undefined,
      requestId: undefined,
      userId: 'alice',
      commandType: 'shell',
      host: undefined,
      startedAt: undefined,
      durationMs: 0,
      cpuPercent: 0,
      memoryBytes: 0,
      exitCode: 0,
      status: '',
    });
    // The status is the domain's to read: empty means completed.
    expect(validateExecution(input).status).toBe('completed');
  });

  it('passes the figures through, the duration in ms', () => {
    const startedAt = new Date('2030-01-01T12:00:00.250Z');
    const req = RecordExecutionRequest.fromPartial({
      reservationId: '0b9e3c1a-2f4d-4a6b-8c7d-1e2f3a4b5c6d',
      requestId: 'r-1',
      userId: 'alice',
      commandType: 'test',
      host: 'exec-1',
      startedAt,
      duration: { seconds: 90, nanos: 500_000_000 },
      cpuPercent: 180.5,
      memoryBytes: 2 ** 33,
      exitCode: -9,
      status: 'timeout',
    });
    const wire = RecordExecutionRequest.decode(RecordExecutionRequest.encode(req).finish());
    expect(recordExecutionFromProto(wire)).toEqual({
      reservationId: '0b9e3c1a-2f4d-4a6b-8c7d-1e2f3a4b5c6d',
      requestId: 'r-1',
      userId: 'alice',
      commandType: 'test',
      host: 'exec-1',
      startedAt,
      durationMs: 90_500,
      cpuPercent: 180.5,
      memoryBytes: 2 ** 33,
      exitCode: -9,
      status: 'timeout',
    });
  });

  it('leaves an unknown status to the domain', () => {
    const input = recordExecutionFromProto(
      RecordExecutionRequest.fromPartial({ userId: 'alice', commandType: 'shell', status: 'ok' }),
    );
    expect(fieldOf(() => validateExecution(input))).toBe('status');
  });
});

describe('GetQuotaStatus mapping', () => {
  const summary = (s: Partial<DomainSummary> = {}): DomainSummary => ({
    count: 4,
    failures: 1,
    averageDurationMs: 1500,
    p95DurationMs: 2750.5,
    averageCpuPercent: 42.5,
    maxMemoryBytes: 2 ** 31,
    ...s,
  });

  it('maps the tier, each command type with its periods and recent figures, and the total', () => {
    const proto = quotaStatusToProto({
      userId: 'alice',
      tier: 'enterprise',
      commands: [
        {
          commandType: 'shell',
          periods: [
            { period: 'daily', limit: null, used: 2, remaining: null, resetsAt: RESETS },
            { period: 'weekly', limit: null, used: 2, remaining: null, resetsAt: RESETS },
            { period: 'monthly', limit: null, used: 2, remaining: null, resetsAt: RESETS },
          ],
          recent: summary({ count: 2, failures: 0 }),
        },
      ],
      recent: summary(),
    });
    expect(proto.userId).toBe('alice');
    expect(proto.tier).toBe('enterprise');
    expect(proto.commands).toHaveLength(1);
    expect(proto.commands[0]!.periods.every((p) => p.unlimited && p.limit === 0)).toBe(true);
    expect(proto.commands[0]!.recent).toMatchObject({ count: 2, failures: 0 });
    expect(proto.recent).toEqual({
      count: 4,
      failures: 1,
      averageDuration: { seconds: 1, nanos: 500_000_000 },
      averageCpuPercent: 42.5,
      maxMemoryBytes: 2 ** 31,
      p95Duration: { seconds: 2, nanos: 750_500_000 },
    });
    expect(GetQuotaStatusResponse.decode(GetQuotaStatusResponse.encode(proto).finish())).toEqual(
      proto,
    );
  });
});
