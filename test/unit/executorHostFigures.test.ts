import { describe, expect, it } from 'vitest';
import {
  busyPercent,
  clampPercent,
  cpuTimes,
  diskBytes,
  diskUsedPercent,
  networkBytes,
  perSecond,
} from '../../clients/typescript/src/executor/hostFigures.js';

const cpu = (user: number, idle: number) => ({
  times: { user, nice: 0, sys: 10, idle, irq: 0 },
});

describe('host load figures', () => {
  it('sums os.cpus() times and gives the busy share of all cores between two readings', () => {
    const before = cpuTimes([cpu(100, 900), cpu(100, 900)]);
    expect(before).toEqual({ total: 2020, idle: 1800 });
    const after = cpuTimes([cpu(400, 1000), cpu(100, 1100)]);
    // 300 busy of 600 elapsed.
    expect(busyPercent(before, after)).toBeCloseTo(50);
    expect(busyPercent(after, after)).toBe(0);
  });

  it('reads disk bytes of the named devices only, in 512-byte sectors', () => {
    const diskstats = [
      '   8       0 sda 100 0 2000 0 50 0 4000 0 0 0 0',
      '   8       1 sda1 100 0 2000 0 50 0 4000 0 0 0 0',
      '   7       0 loop0 9 0 999 0 9 0 999 0 0 0 0',
    ].join('\n');
    expect(diskBytes(diskstats, new Set(['sda']))).toEqual({
      read: 2000 * 512,
      written: 4000 * 512,
    });
  });

  it('reads network bytes of every interface but loopback', () => {
    const netDev = [
      'Inter-|   Receive                                                |  Transmit',
      ' face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets',
      '    lo: 5000 10 0 0 0 0 0 0 5000 10 0 0 0 0 0 0',
      '  eth0: 1000 10 0 0 0 0 0 0 300 3 0 0 0 0 0 0',
      '  eth1: 24 1 0 0 0 0 0 0 7 1 0 0 0 0 0 0',
    ].join('\n');
    expect(networkBytes(netDev)).toEqual({ rx: 1024, tx: 307 });
  });

  it('gives disk use as df does, rates per second, and percents ReportLoad accepts', () => {
    expect(diskUsedPercent({ blocks: 100, bfree: 40, bavail: 20 })).toBeCloseTo(75);
    expect(diskUsedPercent({ blocks: 0, bfree: 0, bavail: 0 })).toBe(0);
    expect(perSecond(3000, 1000, 2)).toBe(1000);
    expect(perSecond(3000, undefined, 2)).toBe(0);
    expect(perSecond(10, 3000, 2)).toBe(0); // a counter that went back (reset)
    expect([clampPercent(-1), clampPercent(100.5), clampPercent(NaN), clampPercent(42)]).toEqual([
      0, 100, 0, 42,
    ]);
  });
});
