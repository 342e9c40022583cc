import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { waitFor } from '../support/waitFor.js';
import { alive } from '../support/alive.js';

// Only compiled JavaScript can be the child's entry, so this exercises the build that `npm ci`
// makes (the prepare script), as the server runs it.
const compiled = new URL('../../dist/src/load/ProcessLoadSampler.js', import.meta.url);

async function load() {
  expect(existsSync(compiled), 'dist/ missing: run `npm run build`').toBe(true);
  return ((await import(compiled.href)) as typeof import('../../src/load/ProcessLoadSampler.js'))
    .ProcessLoadSampler;
}

// Each test starts node processes (one more after a kill): seconds on a loaded machine, past a
// unit test's default 5 s.
describe('ProcessLoadSampler (compiled)', { timeout: 30_000 }, () => {
  // The sampling runs in another process, so its work cannot block this event loop; a timed
  // stall bound here only measured how busy the machine was (61 ms once under a full CI run).
  it('samples in a child process', async () => {
    const ProcessLoadSampler = await load();
    const sampler = new ProcessLoadSampler(process.cwd());
    try {
      const figures = [];
      for (let i = 0; i < 3; i++) figures.push(await sampler.sample());
      for (const f of figures) {
        expect(f.cpuPercent).toBeGreaterThanOrEqual(0);
        expect(f.cpuPercent).toBeLessThanOrEqual(100);
        expect(f.memoryPercent).toBeGreaterThan(0);
        expect(f.diskPercent).toBeGreaterThan(0);
        expect(f.at).toBeInstanceOf(Date);
      }
      expect(sampler.pid).toBeGreaterThan(0);
      expect(sampler.pid).not.toBe(process.pid);
      expect(alive(sampler.pid!)).toBe(true);
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
      await waitFor(() => sampler.pid !== undefined && sampler.pid !== first, 20_000);
      const after = await sampler.sample();
      expect(after.memoryPercent).toBeGreaterThan(0);
    } finally {
      const last = sampler.pid!;
      await sampler.close();
      expect(alive(last)).toBe(false);
    }
  });
});
