import { describe, expect, it } from 'vitest';
import type { RuleOutcome } from '../../src/core/decisions.js';
import { DecisionCounts, type DecisionCount } from '../../src/metrics/DecisionCounts.js';
import { Metrics } from '../../src/metrics/Metrics.js';
import { limitEvent as event, outcome as ruleOutcome } from '../support/auditEvents.js';

const outcome = (rule: string, o: Partial<RuleOutcome> = {}): RuleOutcome =>
  ruleOutcome({ rule, ...o });

/** The non-zero series as "source rule result" → value. */
function nonZero(counts: Iterable<DecisionCount>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of counts) if (c.value > 0) out[`${c.source} ${c.rule} ${c.result}`] = c.value;
  return out;
}

describe('DecisionCounts', () => {
  it('counts each rule of a call by its own result, and the call once under rule "*"', () => {
    const counts = new DecisionCounts();
    // Allowed: a rule with room, and a shadow rule that would have denied.
    counts.decided(
      event({
        rules: [outcome('per-user'), outcome('shadow-ip', { shadow: true, exceeded: true })],
      }),
    );
    // Denied by one rule; the other had room and consumed nothing, so it counts nothing.
    counts.decided(
      event({
        allowed: false,
        rules: [outcome('per-user', { exceeded: true }), outcome('per-ip')],
      }),
    );
    // The failure mode: every rule that applied, and the call, are degraded.
    counts.decided(event({ degraded: true, rules: [outcome('per-user'), outcome('per-ip')] }));
    // A command quota denial, labelled by the rule's command type.
    counts.decided(
      event({
        source: 'command_quota',
        allowed: false,
        rules: [outcome('command:shell', { scope: 'command', exceeded: true })],
      }),
    );
    // Overloaded host: denied as a call, no quota rule exceeded.
    counts.decided(
      event({ source: 'command_quota', allowed: false, rules: [outcome('command:shell')] }),
    );
    expect(nonZero(counts.counts())).toEqual({
      'check_limit * allowed': 1,
      'check_limit * denied': 1,
      'check_limit * degraded': 1,
      'check_limit per-user allowed': 1,
      'check_limit per-user denied': 1,
      'check_limit per-user degraded': 1,
      'check_limit shadow-ip shadow_denied': 1,
      'check_limit per-ip degraded': 1,
      'command_quota * denied': 2,
      'command_quota command:shell denied': 1,
    });
  });

  it('does not count a replayed answer again', () => {
    const counts = new DecisionCounts();
    const first = event({ allowed: false, rules: [outcome('per-user', { exceeded: true })] });
    counts.decided(first);
    counts.decided({ ...first, replayed: true });
    counts.decided(event({ replayed: true, rules: [outcome('per-user')] }));
    expect(nonZero(counts.counts())).toEqual({
      'check_limit * denied': 1,
      'check_limit per-user denied': 1,
    });
  });

  it('shows zeroed whole-call series before any decision, and every result of a rule seen', () => {
    const counts = new DecisionCounts();
    expect([...counts.counts()].map((c) => `${c.source} ${c.rule} ${c.result}`)).toEqual([
      'check_limit * allowed',
      'check_limit * denied',
      'check_limit * degraded',
      'command_quota * allowed',
      'command_quota * denied',
      'command_quota * degraded',
    ]);
    counts.decided(event({ rules: [outcome('r')] }));
    const r = [...counts.counts()].filter((c) => c.rule === 'r');
    expect(r.map((c) => [c.result, c.value])).toEqual([
      ['allowed', 1],
      ['denied', 0],
      ['shadow_denied', 0],
      ['degraded', 0],
    ]);
  });
});

describe('Metrics', () => {
  it('exposes decisions, batch sizes, merged gauges and tasks in the text format', async () => {
    const metrics = new Metrics();
    metrics.decisions.decided(event({ rules: [outcome('per-user')] }));
    metrics.decisionBatch('limits', 3);
    metrics.decisionBatch('limits', 300);
    metrics.addGauges([
      {
        name: 'quota_test_depth',
        help: 'depth',
        labelNames: ['store'],
        read: () => [{ labels: { store: 'a' }, value: 2 }],
      },
      {
        name: 'quota_test_depth',
        help: 'depth',
        labelNames: ['store'],
        read: () => [{ labels: { store: 'b' }, value: 5 }],
      },
      { name: 'quota_test_plain', help: 'plain', read: () => [{ value: 7 }] },
      { name: 'quota_test_done_total', help: 'done', kind: 'counter', read: () => [{ value: 9 }] },
      {
        name: 'quota_test_broken',
        help: 'broken',
        read: () => {
          throw new Error('not now');
        },
      },
    ]);
    // Not a literal in place: the registry's status may carry more fields than these.
    const flush = {
      name: 'flush',
      intervalMs: 1000,
      clusterWide: false,
      runs: 4,
      failures: 1,
      consecutiveFailures: 1,
      skipped: 0,
      lastRunAt: new Date(2_000_000),
      lastDurationMs: 250,
      lastError: null,
      nextRunAt: null,
      running: true,
    };
    metrics.followJobs(() => [flush]);
    const text = await metrics.registry.metrics();
    expect(text).toContain(
      'quota_decisions_total{source="check_limit",rule="per-user",result="allowed"} 1',
    );
    expect(text).toContain(
      'quota_decisions_total{source="check_limit",rule="*",result="allowed"} 1',
    );
    expect(text).toContain('quota_decision_batch_size_count{store="limits"} 2');
    expect(text).toContain('quota_decision_batch_size_bucket{le="4",store="limits"} 1');
    expect(text).toContain('quota_test_depth{store="a"} 2');
    expect(text).toContain('quota_test_depth{store="b"} 5');
    expect(text).toContain('quota_test_plain 7');
    expect(text).toContain('# TYPE quota_test_broken gauge');
    expect(text).toContain('# TYPE quota_test_done_total counter');
    expect(text).toContain('quota_test_done_total 9');
    expect(text).toContain('quota_task_runs_total{task="flush"} 4');
    expect(text).toContain('quota_task_failures_total{task="flush"} 1');
    expect(text).toContain('quota_task_running{task="flush"} 1');
    expect(text).toContain('quota_task_last_duration_seconds{task="flush"} 0.25');
    expect(text).toContain('quota_task_last_run_timestamp_seconds{task="flush"} 2000');
    // Counted once more, written whole again: a second scrape does not double anything.
    metrics.decisions.decided(event({ rules: [outcome('per-user')] }));
    const again = await metrics.registry.metrics();
    expect(again).toContain(
      'quota_decisions_total{source="check_limit",rule="per-user",result="allowed"} 2',
    );
    expect(again).toContain('quota_task_runs_total{task="flush"} 4');
  });

  it('refuses sources of one name that differ in labels or kind', () => {
    const metrics = new Metrics();
    const read = () => [];
    expect(() =>
      metrics.addGauges([
        { name: 'quota_test_x', help: 'x', labelNames: ['store'], read },
        { name: 'quota_test_x', help: 'x', labelNames: ['host'], read },
      ]),
    ).toThrow(/quota_test_x/);
    expect(() =>
      metrics.addGauges([
        { name: 'quota_test_y', help: 'y', read },
        { name: 'quota_test_y', help: 'y', kind: 'counter', read },
      ]),
    ).toThrow(/quota_test_y/);
  });
});
