import { connect, type LoadSnapshot, type QuotaStream } from '@quota-authority/client';

/** WatchLoad streams held open on one connection of their own. */
export interface Watchers {
  /** Snapshots received so far, over every stream. */
  received(): number;
  /** Ends the streams and their connection. */
  close(): void;
}

/**
 * Opens `count` WatchLoad streams (every host, the default 1 s interval) on a connection of their
 * own to `address`, as a dashboard's watches would be, and resolves once every stream has had
 * its first snapshot or after 10 s.
 */
export async function openWatchers(
  address: string,
  token: string | undefined,
  count: number,
): Promise<Watchers> {
  const client = connect({ address, token });
  const streams: QuotaStream<LoadSnapshot>[] = [];
  let received = 0;
  let started = 0;
  for (let i = 0; i < count; i++) {
    const stream = client.quota.watchLoad({ interval: undefined, hosts: [] });
    let first = true;
    void (async () => {
      for await (const snapshot of stream) {
        if (!snapshot) continue;
        received++;
        if (first) started++;
        first = false;
      }
    })().catch(() => undefined);
    streams.push(stream);
  }
  const until = Date.now() + 10_000;
  while (started < count && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
  return {
    received: () => received,
    close() {
      for (const s of streams) s.cancel();
      client.close();
    },
  };
}
