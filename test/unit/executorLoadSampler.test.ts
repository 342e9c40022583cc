import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { LoadSamplerStatus } from '@quota-authority/client';

// The process-wide load sampler, seen from node processes of their own on the built package
// (build it first): its ES module and CommonJS builds loaded side by side share one sampler, and
// an executor dropped without close() leaves it once collected. Reports go to a dead address
// (127.0.0.1:1): only the sampler's bookkeeping is under test.

const dist = (path: string) =>
  fileURLToPath(new URL(`../../clients/typescript/dist/${path}`, import.meta.url));

/** Runs an ES module `script` in a node process and parses the JSON line it prints. */
async function runScript<T>(script: string, nodeArgs: string[] = []): Promise<T> {
  const stdout = await new Promise<string>((resolve, reject) =>
    execFile(
      process.execPath,
      [...nodeArgs, '--input-type=module', '-e', script],
      {
        env: { ...process.env, QA_ESM: dist('esm/index.js'), QA_CJS: dist('cjs/index.js') },
        // A hang fails the test instead of outliving it.
        timeout: 20_000,
        killSignal: 'SIGKILL',
      },
      (error, out, err) => (error ? reject(new Error(`${error.message}\n${err}`)) : resolve(out)),
    ),
  );
  return JSON.parse(stdout) as T;
}

describe('one sampler per process', () => {
  it('the ES module and CommonJS copies of the package share it: one count, one timer', async () => {
    const r = await runScript<{
      distinct: boolean;
      joined: LoadSamplerStatus[];
      ticking: LoadSamplerStatus[];
      elapsedMs: number;
      oneLeft: LoadSamplerStatus;
      closed: LoadSamplerStatus[];
    }>(`
      import { createRequire } from 'node:module';
      const esm = await import(process.env.QA_ESM);
      const cjs = createRequire(process.env.QA_CJS)(process.env.QA_CJS);
      const dead = { address: '127.0.0.1:1', retry: false };
      const options = { loadIntervalMs: 50, onLoadReportError() {} };
      const [ce, cc] = [esm.connect(dead), cjs.connect(dead)];
      const a = new esm.QuotaExecutor(ce, { host: 'copy-esm', ...options });
      const b = new cjs.QuotaExecutor(cc, { host: 'copy-cjs', ...options });
      const joined = [esm.loadSamplerStatus(), cjs.loadSamplerStatus()];
      const t0 = performance.now();
      await new Promise((r) => setTimeout(r, 500));
      const ticking = [esm.loadSamplerStatus(), cjs.loadSamplerStatus()];
      const elapsedMs = performance.now() - t0;
      a.close();
      const oneLeft = esm.loadSamplerStatus();
      b.close();
      const closed = [esm.loadSamplerStatus(), cjs.loadSamplerStatus()];
      ce.close();
      cc.close();
      const distinct = esm.QuotaExecutor !== cjs.QuotaExecutor;
      console.log(JSON.stringify({ distinct, joined, ticking, elapsedMs, oneLeft, closed }));
    `);
    // Two copies of the code indeed, …
    expect(r.distinct).toBe(true);
    // … one sampler: both count both executors, …
    for (const s of r.joined)
      expect(s).toMatchObject({ executors: 2, running: true, intervalMs: 50 });
    // … and see the same readings, those of one timer at 50 ms (two would make twice as many).
    expect(r.ticking[0]).toEqual(r.ticking[1]);
    expect(r.ticking[0]!.samples).toBeGreaterThanOrEqual(2);
    expect(r.ticking[0]!.samples).toBeLessThanOrEqual(Math.ceil(r.elapsedMs / 50) + 1);
    expect(r.oneLeft).toMatchObject({ executors: 1, running: true });
    for (const s of r.closed) expect(s).toMatchObject({ executors: 0, running: false });
  });
});

describe('an executor dropped without close()', () => {
  it('stops being reported once collected, even when its hooks refer to it', async () => {
    const r = await runScript<{ before: number; after: number; final: LoadSamplerStatus }>(
      `
      const { connect, QuotaExecutor, loadSamplerStatus } = await import(process.env.QA_ESM);
      const connection = connect({ address: '127.0.0.1:1', retry: false });
      const options = { loadIntervalMs: 60_000, onLoadReportError() {} };
      (() => void new QuotaExecutor(connection, { host: 'dropped', ...options }))();
      (() => {
        const e = new QuotaExecutor(connection, { host: 'self', ...options, onLoadReport: () => e.host });
      })();
      const kept = new QuotaExecutor(connection, { host: 'kept', ...options });
      const before = loadSamplerStatus().executors;
      for (let i = 0; i < 100 && loadSamplerStatus().executors > 1; i++) {
        globalThis.gc();
        await new Promise((r) => setTimeout(r, 10));
      }
      const after = loadSamplerStatus().executors;
      kept.close();
      connection.close();
      console.log(JSON.stringify({ before, after, final: loadSamplerStatus() }));
    `,
      ['--expose-gc'],
    );
    expect(r.before).toBe(3);
    expect(r.after).toBe(1);
    expect(r.final).toMatchObject({ executors: 0, running: false });
  });
});
