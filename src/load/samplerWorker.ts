/**
 * Worker-thread entry of WorkerLoadSampler: systeminformation runs some commands synchronously
 * (measured: event-loop stalls of 10–50 ms per sample), so sampling happens here, away from the
 * thread that answers decisions.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SystemLoadSampler } from './SystemLoadSampler.js';

const sampler = new SystemLoadSampler((workerData as { dataPath: string }).dataPath);

parentPort?.on('message', (id: number) => {
  sampler.sample().then(
    (figures) => parentPort?.postMessage({ id, figures }),
    (err: unknown) => parentPort?.postMessage({ id, error: String(err) }),
  );
});
