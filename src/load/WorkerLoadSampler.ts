import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { LoadSampler } from './ports.js';
import type { HostSnapshot } from './types.js';

type Figures = Omit<HostSnapshot, 'host'>;

/**
 * SystemLoadSampler on a worker thread, so its synchronous commands never stall calls. One
 * request at a time is all the sampling loop makes; a sample that takes longer than
 * `timeoutMs` fails and the loop tries again next interval.
 */
export class WorkerLoadSampler implements LoadSampler {
  private worker: Worker;
  private closed = false;
  private next = 0;
  private readonly waiting = new Map<
    number,
    { resolve: (f: Figures) => void; reject: (e: Error) => void }
  >();

  constructor(
    private readonly dataPath: string,
    private readonly timeoutMs = 10_000,
  ) {
    this.worker = this.spawn();
  }

  /** Starts the worker; one that dies is replaced, so the host never goes stale for good. */
  private spawn(): Worker {
    const worker = new Worker(WorkerLoadSampler.script(), {
      workerData: { dataPath: this.dataPath },
    });
    worker.unref();
    worker.on('message', (msg: { id: number; figures?: Figures; error?: string }) => {
      const w = this.waiting.get(msg.id);
      if (!w) return;
      this.waiting.delete(msg.id);
      if (msg.figures) w.resolve(msg.figures);
      else w.reject(new Error(msg.error ?? 'sampling failed'));
    });
    worker.on('error', () => undefined);
    worker.on('exit', () => {
      for (const w of this.waiting.values()) w.reject(new Error('sampler worker exited'));
      this.waiting.clear();
      if (this.closed) return;
      setTimeout(() => {
        if (!this.closed) this.worker = this.spawn();
      }, 1000).unref();
    });
    return worker;
  }

  /** The compiled worker script beside this file (absent when running from TypeScript sources). */
  static script(): URL {
    return new URL('./samplerWorker.js', import.meta.url);
  }

  /** Whether the worker can run here: only compiled JavaScript can be a worker's entry. */
  static available(): boolean {
    const url = WorkerLoadSampler.script();
    return url.protocol === 'file:' && existsSync(fileURLToPath(url));
  }

  sample(): Promise<Figures> {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`no load sample within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.waiting.set(id, {
        resolve: (f) => {
          clearTimeout(timer);
          resolve(f);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.worker.postMessage(id);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.waiting.values()) w.reject(new Error('sampler closed'));
    this.waiting.clear();
    await this.worker.terminate();
  }
}
