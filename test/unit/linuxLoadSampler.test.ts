import { describe, expect, it } from 'vitest';
import { LinuxLoadSampler } from '../../src/load/LinuxLoadSampler.js';

describe.runIf(LinuxLoadSampler.available())('LinuxLoadSampler (this host)', () => {
  it('reads this host: percentages in range, rates 0 on the first sample', async () => {
    const sampler = new LinuxLoadSampler(process.cwd());
    const first = await sampler.sample();
    expect(first.cpuPercent).toBeGreaterThanOrEqual(0);
    expect(first.cpuPercent).toBeLessThanOrEqual(100);
    expect(first.memoryPercent).toBeGreaterThan(0);
    expect(first.memoryPercent).toBeLessThan(100);
    expect(first.diskPercent).toBeGreaterThan(0);
    expect(first.diskReadBytesPerSec).toBe(0);
    expect(first.netRxBytesPerSec).toBe(0);
    expect(first.at).toBeInstanceOf(Date);
  });

  it('sees this process keep a core busy between two samples', async () => {
    const sampler = new LinuxLoadSampler(process.cwd());
    await sampler.sample();
    const until = performance.now() + 400;
    while (performance.now() < until) {
      // One core fully busy is at least 1/cores of the machine.
    }
    const busy = await sampler.sample();
    const { availableParallelism } = await import('node:os');
    expect(busy.cpuPercent).toBeGreaterThan((100 / availableParallelism()) * 0.8);
  });

  it('reports disk use of the nearest existing folder for a path not made yet', async () => {
    const sampler = new LinuxLoadSampler(`${process.cwd()}/not/made/yet`);
    expect((await sampler.sample()).diskPercent).toBeGreaterThan(0);
  });
});
