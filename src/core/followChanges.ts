import type { ChangeFeed } from './ports.js';

/**
 * Keeps a cache current: `reload` runs once now, whenever `feed` says `payload` changed, after
 * the feed reconnects (changes may have been missed), and every `refreshMs` as a safety net.
 * Resolves after the first load; the returned function stops the periodic reload.
 */
export async function followChanges(
  feed: ChangeFeed,
  payload: string,
  reload: () => Promise<void>,
  refreshMs: number,
): Promise<() => void> {
  feed.onChange((p) => {
    if (p === payload) void reload();
  });
  feed.onReconnect(() => void reload());
  await reload();
  const timer = setInterval(() => void reload(), refreshMs);
  timer.unref();
  return () => clearInterval(timer);
}
