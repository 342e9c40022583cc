import { Counter, Gauge, type Registry } from 'prom-client';
import type { JobStatus } from '../jobs/Job.js';

/**
 * Task (background job) figures, read from the registry's statuses at each scrape. The counters
 * are the registry's own counts since this process started, written whole at each collect.
 */
export function registerTaskMetrics(registry: Registry, list: () => readonly JobStatus[]): void {
  const counter = (name: string, help: string, value: (s: JobStatus) => number) =>
    new Counter({
      name,
      help,
      labelNames: ['task'],
      registers: [registry],
      collect() {
        this.reset();
        for (const s of list()) this.inc({ task: s.name }, value(s));
      },
    });
  const gauge = (name: string, help: string, value: (s: JobStatus) => number | null) =>
    new Gauge({
      name,
      help,
      labelNames: ['task'],
      registers: [registry],
      collect() {
        this.reset();
        for (const s of list()) {
          const v = value(s);
          if (v !== null) this.set({ task: s.name }, v);
        }
      },
    });
  counter('quota_task_runs_total', 'Task runs completed here, failed ones included', (s) => s.runs);
  counter('quota_task_failures_total', 'Task runs that failed', (s) => s.failures);
  counter(
    'quota_task_skipped_total',
    'Runs of a cluster-wide task skipped because another replica held its lock',
    (s) => s.skipped,
  );
  gauge('quota_task_running', '1 while the task runs here', (s) => (s.running ? 1 : 0));
  gauge('quota_task_last_duration_seconds', 'Duration of the last run, in seconds', (s) =>
    s.lastDurationMs === null ? null : s.lastDurationMs / 1000,
  );
  gauge('quota_task_last_run_timestamp_seconds', 'When the last run ended, in Unix seconds', (s) =>
    s.lastRunAt === null ? null : s.lastRunAt.getTime() / 1000,
  );
}
