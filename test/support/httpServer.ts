import { createServer, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A real node:http server on 127.0.0.1:0 running `listener`. */
export interface TestHttpServer {
  readonly url: string;
  close(): Promise<void>;
}

export async function startHttpServer(listener: RequestListener): Promise<TestHttpServer> {
  const server = createServer(listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        // fetch keeps connections alive; close() alone would wait for them to time out.
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
