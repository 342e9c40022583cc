/**
 * Wraps `fn` so that at most one run is in progress and at most one more is queued: calls made
 * while it runs share that one next run. Each returned promise settles when a run that started
 * after the call has finished, so a caller that changed something sees it applied.
 */
export function coalesced(fn: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  let queued: Promise<void> | undefined;
  const run = (): Promise<void> => {
    if (!running) {
      running = fn().finally(() => {
        running = undefined;
      });
      return running;
    }
    queued ??= running
      .catch(() => undefined)
      .then(() => {
        queued = undefined;
        return run();
      });
    return queued;
  };
  return run;
}
