import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

// Only compiled JavaScript can run on a worker thread, so this exercises the build that
// `npm ci` makes (the prepare script), as the server runs it.
const compiled = new URL('../../dist/src/load/WorkerLoadSampler.js', import.meta.url);

describe('WorkerLoadSampler (compiled)', () => {
  it('samples on a worker thread without stalling this one', async () => {
    expect(existsSync(compiled), 'dist/ missing: run `npm run build`').toBe(true);
    const { WorkerLoadSampler } = (await import(
      compiled.href
    )) as typeof import('../../src/load/WorkerLoadSampler.js');
    const sampler = new WorkerLoadSampler(process.cwd());
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
      // A gross-stall guard only: scheduling on a busy 2-core box alone can cost a few ms.
      expect(worst).toBeLessThan(60);
    } finally {
      await sampler.close();
    }
  });
});
