import net from 'node:net';

/**
 * A TCP relay in front of a gRPC server that can lose one answer: armed with dropNextAnswer(),
 * it cuts the connection (both sockets) at the first HTTP/2 HEADERS or DATA frame the server
 * sends, without passing that frame on. The request has then reached the server and been
 * decided, and the client never sees the answer: what a connection lost at the worst moment
 * looks like. Connections made afterwards pass everything.
 */
export interface DroppingRelay {
  /** `host:port` of the relay. */
  readonly address: string;
  /** Cut the connection that carries the next answer, before it reaches the client. */
  dropNextAnswer(): void;
  /** Answers dropped so far. */
  readonly dropped: number;
  /** Connections accepted so far. */
  readonly connections: number;
  close(): Promise<void>;
}

const FRAME_HEADER = 9;
const DATA = 0x0;
const HEADERS = 0x1;

export async function droppingRelay(target: string): Promise<DroppingRelay> {
  const colon = target.lastIndexOf(':');
  const host = target.slice(0, colon);
  const port = Number(target.slice(colon + 1));
  let armed = false;
  let dropped = 0;
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    connections++;
    const upstream = net.connect(port, host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => sockets.delete(s));
    }
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.on('data', (data) => upstream.write(data));
    // Server to client: whole frames only, so that an answer's first frame can be held back.
    let pending = Buffer.alloc(0);
    upstream.on('data', (data) => {
      pending = Buffer.concat([pending, data]);
      while (pending.length >= FRAME_HEADER) {
        const size = FRAME_HEADER + pending.readUIntBE(0, 3);
        if (pending.length < size) break;
        const type = pending[3];
        if (armed && (type === HEADERS || type === DATA)) {
          armed = false;
          dropped++;
          client.destroy();
          upstream.destroy();
          return;
        }
        client.write(pending.subarray(0, size));
        pending = pending.subarray(size);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    dropNextAnswer: () => void (armed = true),
    get dropped() {
      return dropped;
    },
    get connections() {
      return connections;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
