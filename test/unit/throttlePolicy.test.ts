import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors.js';
import { assessHealth } from '../../src/load/assessHealth.js';
import { direction } from '../../src/load/LoadAdmin.js';
import { LoadHistoryBuffer } from '../../src/load/LoadHistoryBuffer.js';
import type { LoadHistoryStore } from '../../src/load/ports.js';
import { metricFactor, throttleFactor, validateThresholds } from '../../src/load/ThrottlePolicy.js';
import type { HistoryRow, HostLoad } from '../../src/load/types.js';

const T = { slight: 70, moderate: 80, heavy: 90, critical: 95 };

describe('throttle policy', () => {
  it.each([
    { percent: 0, factor: 1.0 },
    { percent: 69.9, factor: 1.0 },
    { percent: 70, factor: 0.8 },
    { percent: 79.9, factor: 0.8 },
    { percent: 80, factor: 0.6 },
    { percent: 85, factor: 0.6 },
    { percent: 89.9, factor: 0.6 },
    { percent: 90, factor: 0.3 },
    { percent: 95, factor: 0.3 },
    { percent: 95.1, factor: 0.0 },
    { percent: 97, factor: 0.0 },
    { percent: 100, factor: 0.0 },
  ])('gives $percent percent the factor $factor', ({ percent, factor }) => {
    expect(metricFactor(percent, T)).toBe(factor);
  });

  it('takes the lower of the CPU and memory factors', () => {
    expect(throttleFactor(85, 10, T)).toBe(0.6);
    expect(throttleFactor(10, 92, T)).toBe(0.3);
    expect(throttleFactor(75, 96, T)).toBe(0);
  });

  it('follows other thresholds', () => {
    expect(throttleFactor(55, 0, { slight: 50, moderate: 60, heavy: 70, critical: 80 })).toBe(0.8);
  });

  it('accepts increasing thresholds within 0-100', () => {
    expect(validateThresholds(T)).toEqual(T);
  });

  it.each([
    [{ ...T, moderate: 70 }, 'thresholds.moderate'],
    [{ ...T, moderate: 60 }, 'thresholds.moderate'],
    [{ ...T, slight: -1 }, 'thresholds.slight'],
    [{ ...T, critical: 101 }, 'thresholds.critical'],
    [{ ...T, heavy: Number.NaN }, 'thresholds.heavy'],
  ])('refuses %o naming %s', (t, field) => {
    let err: unknown;
    try {
      validateThresholds(t);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).field).toBe(field);
  });
});

const load = (l: Partial<HostLoad>): HostLoad => ({
  host: 'h',
  at: new Date(),
  cpuPercent: 10,
  memoryPercent: 10,
  diskPercent: 10,
  diskReadBytesPerSec: 0,
  diskWriteBytesPerSec: 0,
  netRxBytesPerSec: 0,
  netTxBytesPerSec: 0,
  loadAvg1m: 0,
  throttleFactor: 1,
  stale: false,
  ageMs: 0,
  ...l,
});

describe('health', () => {
  it('is healthy below every threshold', () => {
    expect(assessHealth(load({}), T)).toMatchObject({ state: 'healthy', reasons: [] });
  });

  it('is a warning at 85% CPU, naming the threshold reached', () => {
    expect(assessHealth(load({ cpuPercent: 85, throttleFactor: 0.6 }), T)).toMatchObject({
      state: 'warning',
      reasons: ['cpu 85.0% >= 80%'],
    });
  });

  it('is critical above the critical threshold', () => {
    const h = assessHealth(load({ memoryPercent: 97, throttleFactor: 0 }), T);
    expect(h.state).toBe('critical');
    expect(h.reasons).toEqual(['memory 97.0% > 95%']);
  });

  it('is critical when the data is stale', () => {
    const h = assessHealth(load({ stale: true, ageMs: 3500 }), T);
    expect(h.state).toBe('critical');
    expect(h.reasons).toEqual(['no data for 3.5s']);
  });
});

describe('trend direction', () => {
  it('compares the halves with a margin of 5 points', () => {
    expect(direction({ firstHalf: 10, secondHalf: 16 })).toBe('rising');
    expect(direction({ firstHalf: 16, secondHalf: 10 })).toBe('falling');
    expect(direction({ firstHalf: 10, secondHalf: 15 })).toBe('stable');
    expect(direction({ firstHalf: null, secondHalf: 15 })).toBe('unknown');
  });
});

describe('load history buffer', () => {
  const snapshot = (host: string, cpu: number) => ({
    host,
    at: new Date(),
    cpuPercent: cpu,
    memoryPercent: 0,
    diskPercent: 0,
    diskReadBytesPerSec: 0,
    diskWriteBytesPerSec: 0,
    netRxBytesPerSec: 0,
    netTxBytesPerSec: 0,
    loadAvg1m: 0,
  });

  it('merges into the host row when full, and counts what it could not keep', async () => {
    const written: HistoryRow[] = [];
    const store: LoadHistoryStore = {
      append: async (rows) => void written.push(...rows),
      trend: async () => [],
      hourly: async () => [],
    };
    const buffer = new LoadHistoryBuffer(store, 2);
    buffer.add(snapshot('a', 10), 1);
    buffer.add(snapshot('b', 10), 1);
    buffer.add(snapshot('a', 30), 1);
    buffer.add(snapshot('c', 50), 1);
    expect(buffer.size).toBe(2);
    expect(buffer.merged).toBe(1);
    expect(buffer.dropped).toBe(1);
    await buffer.flush();
    const a = written.find((r) => r.host === 'a')!;
    expect(a).toMatchObject({ samples: 2, cpuPercent: 20, cpuMax: 30 });
    expect(buffer.size).toBe(0);
  });

  it('keeps the rows of a failed flush', async () => {
    const store: LoadHistoryStore = {
      append: async () => {
        throw new Error('down');
      },
      trend: async () => [],
      hourly: async () => [],
    };
    const buffer = new LoadHistoryBuffer(store, 10);
    buffer.add(snapshot('a', 10), 1);
    await expect(buffer.flush()).rejects.toThrow('down');
    expect(buffer.size).toBe(1);
  });
});
