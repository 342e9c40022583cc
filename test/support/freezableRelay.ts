import net from 'node:net';

/**
 * A TCP relay in front of the PostgreSQL server of `databaseUrl` that can stop passing bytes:
 * a frozen server or a partition, with every socket left open. Bytes held while frozen are
 * passed on at the thaw. A socket closed on either side closes its other half at once, frozen
 * or not, so a connection the client destroys ends the server's session.
 */
export interface FreezableRelay {
  /** `databaseUrl` through the relay. */
  readonly url: string;
  freeze(): void;
  thaw(): void;
  close(): Promise<void>;
}

export async function freezableRelay(databaseUrl: string): Promise<FreezableRelay> {
  const target = new URL(databaseUrl);
  const port = Number(target.port || 5432);
  let frozen = false;
  const held: (() => void)[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(port, target.hostname);
    const pipe = (from: net.Socket, to: net.Socket) =>
      from.on('data', (data) => {
        if (frozen) held.push(() => to.write(data));
        else to.write(data);
      });
    pipe(client, upstream);
    pipe(upstream, client);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => sockets.delete(s));
    }
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = new URL(databaseUrl);
  url.hostname = '127.0.0.1';
  url.port = String((server.address() as net.AddressInfo).port);
  return {
    url: url.toString(),
    freeze: () => void (frozen = true),
    thaw() {
      frozen = false;
      for (const pass of held.splice(0)) pass();
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
