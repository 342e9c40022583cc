import { describe, expect, it } from 'vitest';
import {
  cpuPercent,
  cpuTimes,
  diskBytes,
  diskPercent,
  memoryPercent,
  networkBytes,
} from '../../src/load/procfsFigures.js';

const STAT = `cpu  100 10 50 800 20 5 5 10 7 0
cpu0 50 5 25 400 10 2 3 5 7 0
intr 12345
`;

describe('procfs figures', () => {
  it('reads CPU time from the aggregate line: idle includes iowait, guest is not counted twice', () => {
    expect(cpuTimes(STAT)).toEqual({ total: 1000, idle: 820 });
  });

  it('gives the busy share between two readings, or since boot without an earlier one', () => {
    const later = cpuTimes(STAT.replace('cpu  100 10 50 800 20', 'cpu  400 10 50 900 20'));
    expect(cpuPercent(later, cpuTimes(STAT))).toBeCloseTo(75);
    expect(cpuPercent(cpuTimes(STAT))).toBeCloseTo(18);
    expect(cpuPercent(cpuTimes(STAT), cpuTimes(STAT))).toBe(0);
  });

  it('counts memory not available to new work, with a fallback for kernels without MemAvailable', () => {
    const meminfo = 'MemTotal:       1000 kB\nMemFree:         100 kB\nMemAvailable:    600 kB\n';
    expect(memoryPercent(meminfo)).toBeCloseTo(40);
    const old = 'MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 100 kB\nCached: 300 kB\n';
    expect(memoryPercent(old)).toBeCloseTo(50);
  });

  it('reports disk use as df does, leaving out blocks reserved for root', () => {
    expect(diskPercent({ blocks: 1000, bfree: 300, bavail: 250 })).toBeCloseTo((700 / 950) * 100);
    expect(diskPercent({ blocks: 0, bfree: 0, bavail: 0 })).toBe(0);
  });

  it('sums 512-byte sectors of the named devices only', () => {
    const diskstats = [
      '   8       0 sda 100 0 10 0 50 0 20 0 0 0 0',
      '   8       1 sda1 100 0 10 0 50 0 20 0 0 0 0',
      ' 253       0 dm-0 100 0 10 0 50 0 20 0 0 0 0',
      ' 259       0 nvme0n1 1 0 1 0 1 0 2 0 0 0 0',
    ].join('\n');
    expect(diskBytes(diskstats, new Set(['sda', 'nvme0n1']))).toEqual({
      read: 11 * 512,
      written: 22 * 512,
    });
  });

  it('sums network bytes of every interface but loopback', () => {
    const netDev = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: 9000 10 0 0 0 0 0 0 9000 10 0 0 0 0 0 0
  eth0: 1500 3 0 0 0 0 0 0 700 2 0 0 0 0 0 0
  eth1:25 1 0 0 0 0 0 0 5 1 0 0 0 0 0 0
`;
    expect(networkBytes(netDev)).toEqual({ rx: 1525, tx: 705 });
  });
});
