import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { waitFor } from '../support/waitFor.js';

// Only compiled JavaScript can be the child's entry, so this exercises the build that `npm ci`
// makes (the prepare script), as the server runs it.
const compiled = new URL('../../dist/src/load/ProcessLoadSampler.js', import.meta.url);

async function load() {
  expect(existsSync(compiled), 'dist/ missing: run `npm run build`').toBe(true);
  return ((await import(compiled.href)) as typeof import('../../src/load/ProcessLoadSampler.js'))
    .ProcessLoadSampler;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('ProcessLoadSampler (compiled)', () => {
  it('samples in a child process without stalling this one', async () => {
    const ProcessLoadSampler = await load();
    const sampler = new ProcessLoadSampler(process.cwd());
    try {
      let worst = 0;
      let last = performance.now();
      const ticker = setInterval(() => {
        const now = performance.now();
        worst = Math.max(worst, now - last);
        last = now;
      }, 1);
      const figures = [];
      for (let i = 0; i < 3; i++) figures.push(await sampler.sample());
      clearInterval(ticker);
      for (const f of figures) {
        expect(f.cpuPercent).toBeGreaterThanOrEqual(0);
        expect(f.cpuPercent).toBeLessThanOrEqual(100);
        expect(f.memoryPercent).toBeGreaterThan(0);
        expect(f.diskPercent).toBeGreaterThan(0);
        expect(f.at).toBeInstanceOf(Date);
      }
      expect(sampler.pid).toBeGreaterThan(0);
      expect(sampler.pid).not.toBe(process.pid);
      // A gross-stall guard only: scheduling on a busy 2-core box alone can cost a few ms.
      expect(worst).toBeLessThan(60);
    } finally {
      await sampler.close();
    }
  });

  it('replaces a sampling process that dies, and stops its process on close', async () => {
    const ProcessLoadSampler = await load();
    const sampler = new ProcessLoadSampler(process.cwd());
    try {
      await sampler.sample();
      const first = sampler.pid!;
      process.kill(first, 'SIGKILL');
      await waitFor(() => sampler.pid !== undefined && sampler.pid !== first, 5000);
      const after = await sampler.sample();
      expect(after.memoryPercent).toBeGreaterThan(0);
    } finally {
      const last = sampler.pid!;
      await sampler.close();
      expect(alive(last)).toBe(false);
    }
  });
});
