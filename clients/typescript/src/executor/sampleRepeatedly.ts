/**
 * Calls `sample` after 10 ms, then at doubling intervals up to `maxIntervalMs`, until the
 * returned stop function is called: a short command still gets a few samples, a long one costs
 * one read per `maxIntervalMs`. A sample still running when the next is due delays it; errors
 * of `sample` are its own to handle. The timers do not keep the process alive.
 */
export function sampleRepeatedly(
  sample: () => void | Promise<void>,
  maxIntervalMs: number,
): () => void {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let interval = Math.min(10, maxIntervalMs);
  const next = (): void => {
    if (stopped) return;
    timer = setTimeout(() => {
      void Promise.resolve()
        .then(sample)
        .catch(() => undefined)
        .finally(next);
    }, interval);
    timer.unref();
    interval = Math.min(interval * 2, maxIntervalMs);
  };
  next();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
