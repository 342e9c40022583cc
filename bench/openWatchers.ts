import { connect, type LoadSnapshot, type QuotaStream } from '@quota-authority/client';

/** WatchLoad streams held open on one connection of their own. */
export interface Watchers {
  /** Snapshots received so far, over every stream. */
  received(): number;
  /** Streams that ended or failed before close(): a server keeps them open until cancelled. */
  lost(): number;
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
  let lost = 0;
  let closing = false;
  const ended = () => {
    if (!closing) lost++;
  };
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
    })().then(ended, ended);
    streams.push(stream);
  }
  const until = Date.now() + 10_000;
  while (started < count && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
  return {
    received: () => received,
    lost: () => lost,
    close() {
      closing = true;
      for (const s of streams) s.cancel();
      client.close();
    },
  };
}
