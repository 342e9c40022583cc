import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { LoadSampler } from './ports.js';
import type { HostSnapshot } from './types.js';

type Figures = Omit<HostSnapshot, 'host'>;

interface Waiting {
  resolve: (f: Figures) => void;
  reject: (e: Error) => void;
}

/**
 * SystemLoadSampler in a child process of its own (see samplerProcess.ts for why not a thread
 * of this one). One request at a time is all the sampling loop makes; a sample that takes
 * longer than `timeoutMs` fails and the loop tries again next interval. A child that dies is
 * replaced, so the host never goes stale for good.
 */
export class ProcessLoadSampler implements LoadSampler {
  private child: ChildProcess;
  private closed = false;
  private next = 0;
  private readonly waiting = new Map<number, Waiting>();

  constructor(
    private readonly dataPath: string,
    private readonly timeoutMs = 10_000,
  ) {
    this.child = this.spawn();
  }

  /** The compiled entry script beside this file (absent when running from TypeScript sources). */
  static script(): URL {
    return new URL('./samplerProcess.js', import.meta.url);
  }

  /** Whether the child can run here: only compiled JavaScript can be its entry. */
  static available(): boolean {
    const url = ProcessLoadSampler.script();
    return url.protocol === 'file:' && existsSync(fileURLToPath(url));
  }

  /** The sampling child's process id, while it runs. */
  get pid(): number | undefined {
    return this.child.exitCode === null && this.child.signalCode === null
      ? this.child.pid
      : undefined;
  }

  private spawn(): ChildProcess {
    const child = fork(fileURLToPath(ProcessLoadSampler.script()), [this.dataPath], {
      // Structured clone keeps `at` a Date; the server's heap flags are not the sampler's.
      serialization: 'advanced',
      execArgv: [],
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    child.unref();
    child.channel?.unref();
    child.on('message', (msg: { id: number; figures?: Figures; error?: string }) => {
      const w = this.waiting.get(msg.id);
      if (!w) return;
      this.waiting.delete(msg.id);
      if (msg.figures) w.resolve(msg.figures);
      else w.reject(new Error(msg.error ?? 'sampling failed'));
    });
    child.on('error', () => undefined);
    child.on('exit', () => {
      this.rejectAll(new Error('sampler process exited'));
      if (this.closed) return;
      setTimeout(() => {
        if (!this.closed) this.child = this.spawn();
      }, 1000).unref();
    });
    return child;
  }

  sample(): Promise<Figures> {
    // Between a child's death and its replacement.
    if (!this.child.connected) return Promise.reject(new Error('sampler process is not running'));
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
      this.child.send(id);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.rejectAll(new Error('sampler closed'));
    const child = this.child;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    // Closing the channel ends the child; a child that does not go is killed.
    if (child.connected) child.disconnect();
    const kill = setTimeout(() => child.kill('SIGKILL'), 2000);
    await exited;
    clearTimeout(kill);
  }

  private rejectAll(err: Error): void {
    for (const w of this.waiting.values()) w.reject(err);
    this.waiting.clear();
  }
}
