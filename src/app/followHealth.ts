import type { EventEmitter } from 'node:events';
import type { Job } from '../jobs/Job.js';
import type { HealthPart } from './Capability.js';

/** What health is reported through: the gRPC health service. */
interface HealthSink {
  setServing(serving: boolean): void;
}

/**
 * SERVING while every capability's health parts are ready and the service is not stopping:
 * evaluated at once when the database goes down or comes back, and every second by a job
 * (parts such as "schema migrated" change without an event).
 */
export function followHealth(
  sink: HealthSink,
  parts: readonly HealthPart[],
  db: EventEmitter,
): { readonly job: Job; update(): void; stopping(): void } {
  let stopping = false;
  const update = () => sink.setServing(!stopping && parts.every((p) => p.ready()));
  db.on('down', update);
  db.on('up', update);
  return {
    job: { name: 'health', intervalMs: 1000, clusterWide: false, run: async () => update() },
    update,
    stopping() {
      stopping = true;
      update();
    },
  };
}
