/**
 * Worker-thread entry of Pacer. Node's timers fire on whole milliseconds and late by up to
 * another, which at 2,000 calls/s sent calls 1 ms late at the median (measured), all counted as
 * the server's latency. This thread sleeps in Atomics.wait, which takes fractional
 * milliseconds, and tells the main thread how many calls have come due each time one does.
 */
import { parentPort, workerData } from 'node:worker_threads';

const { rate, total, startAt } = workerData as { rate: number; total: number; startAt: number };
const sleeper = new Int32Array(new SharedArrayBuffer(4));
const now = () => performance.timeOrigin + performance.now();

let released = 0;
while (released < total) {
  const wait = startAt + (released / rate) * 1000 - now();
  if (wait > 0) Atomics.wait(sleeper, 0, 0, wait);
  const due = Math.min(total, Math.floor(((now() - startAt) / 1000) * rate) + 1);
  if (due > released) {
    parentPort?.postMessage(due - released);
    released = due;
  }
}
