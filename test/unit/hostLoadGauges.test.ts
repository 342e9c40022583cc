import { describe, expect, it } from 'vitest';
import type { HostLoad } from '../../src/load/types.js';
import { hostLoadGauges, MAX_HOST_SERIES } from '../../src/metrics/hostLoadGauges.js';

const host = (name: string, ageMs: number): HostLoad => ({
  host: name,
  at: new Date(0),
  cpuPercent: 50,
  memoryPercent: 40,
  diskPercent: 30,
  diskReadBytesPerSec: 0,
  diskWriteBytesPerSec: 0,
  netRxBytesPerSec: 0,
  netTxBytesPerSec: 0,
  loadAvg1m: 1,
  throttleFactor: 1,
  stale: false,
  ageMs,
});

describe('hostLoadGauges', () => {
  it('exports every host while they are few', () => {
    const [cpu] = hostLoadGauges({ list: () => [host('a', 10), host('b', 20)] });
    expect([...cpu!.read()].map((r) => r.labels?.['host'])).toEqual(['a', 'b']);
  });

  it('exports only the freshest MAX_HOST_SERIES hosts when a client invents host names', () => {
    // Host i is i ms old: the freshest are the first MAX_HOST_SERIES.
    const many = Array.from({ length: MAX_HOST_SERIES * 3 }, (_, i) => host(`h${i}`, i)).reverse();
    const [cpu] = hostLoadGauges({ list: () => many });
    const hosts = [...cpu!.read()].map((r) => r.labels?.['host']);
    expect(hosts).toHaveLength(MAX_HOST_SERIES);
    expect(new Set(hosts)).toEqual(
      new Set(Array.from({ length: MAX_HOST_SERIES }, (_, i) => `h${i}`)),
    );
  });
});
