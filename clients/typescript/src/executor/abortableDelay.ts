import { MAX_TIMER_MS } from './checkOptions.js';

/**
 * Resolves once `ms` have passed by performance.now(), or rejects with `signal.reason` as soon
 * as the signal aborts. A Node timer may fire up to a millisecond early (it counts from the
 * event loop's cached time): the rest is waited too, so the delay is never cut short. A delay
 * past Node's longest timer is waited in steps of it (a longer timer would fire after 1 ms).
 */
export function abortableDelay(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const until = performance.now() + ms;
    let timer: NodeJS.Timeout | undefined;
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const wait = (): void => {
      const left = until - performance.now();
      if (left <= 0) {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      } else timer = setTimeout(wait, Math.min(Math.ceil(left), MAX_TIMER_MS));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    wait();
  });
}
