import { Worker } from 'node:worker_threads';

/**
 * Releases `total` calls at `rate` per second, on time to a fraction of a millisecond (see
 * pacerWorker.ts). `onDue` gets each call's index and the absolute time it was due
 * (performance.timeOrigin-based ms), from which its latency is measured.
 */
export function pace(
  rate: number,
  total: number,
  onDue: (index: number, dueAt: number) => void,
): Promise<void> {
  const startAt = performance.timeOrigin + performance.now() + 50;
  const worker = new Worker(new URL('./pacerWorker.js', import.meta.url), {
    workerData: { rate, total, startAt },
  });
  let released = 0;
  return new Promise((resolve, reject) => {
    worker.on('message', (count: number) => {
      for (let i = 0; i < count; i++, released++) {
        onDue(released, startAt + (released / rate) * 1000);
      }
      if (released === total) resolve();
    });
    worker.once('error', reject);
    worker.once('exit', () => {
      if (released < total) reject(new Error(`pacer stopped after ${released} of ${total} calls`));
    });
  });
}

/** The current time on the clock `pace` gives due times by. */
export function clock(): number {
  return performance.timeOrigin + performance.now();
}
