/**
 * A hostile client's tools, on bare `node:http2`: idle connections, and calls whose request
 * message is announced and never completed. Used by bench/exhaust.ts and the limits tests.
 */
import http2 from 'node:http2';

/** How a call's stream ended: the gRPC status the server answered, if any. */
export interface CallEnd {
  readonly status: number | undefined;
  readonly message: string | undefined;
  /** RST_STREAM code (0 when the server closed it with NO_ERROR or it ended normally). */
  readonly rstCode: number | undefined;
}

/**
 * One HTTP/2 connection; resolves once its SETTINGS exchange is done. Its memory for data not yet
 * sent is unbounded: by default (10 MB) the client would reset its own calls with
 * ENHANCE_YOUR_CALM before the server has read what a hundred stalled calls send.
 */
export function openSession(address: string): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://${address}`, { maxSessionMemory: 1 << 20 });
    session.once('error', reject);
    session.once('remoteSettings', () => {
      session.off('error', reject);
      // An error later (the server closing it) is what the caller watches for with 'close'.
      session.on('error', () => undefined);
      resolve(session);
    });
  });
}

/** Resolves when `session` closes (whoever closed it). */
export function sessionClosed(session: http2.ClientHttp2Session): Promise<void> {
  return session.closed ? Promise.resolve() : new Promise((r) => session.once('close', r));
}

export interface OpenCall {
  readonly stream: http2.ClientHttp2Stream;
  /** Resolves when the stream closes, with the status the server answered. */
  readonly ended: Promise<CallEnd>;
}

/**
 * Starts a gRPC call to `path` whose message claims `claimBytes` and sends only `sendBytes` of
 * them, then stalls (never half-closes). With `sendBytes === claimBytes` and `end`, a complete
 * request instead.
 */
export function startCall(
  session: http2.ClientHttp2Session,
  path: string,
  claimBytes: number,
  sendBytes: number,
  end = false,
): OpenCall {
  const stream = session.request(
    {
      ':method': 'POST',
      ':path': path,
      'content-type': 'application/grpc',
      te: 'trailers',
    },
    { endStream: false },
  );
  let status: number | undefined;
  let message: string | undefined;
  const read = (headers: http2.IncomingHttpHeaders) => {
    const s = headers['grpc-status'];
    if (s !== undefined) status = Number(s);
    const m = headers['grpc-message'];
    if (typeof m === 'string') message = decodeURIComponent(m);
  };
  stream.on('response', read);
  stream.on('trailers', read);
  stream.on('data', () => undefined);
  stream.on('error', () => undefined);
  const ended = new Promise<CallEnd>((resolve) =>
    stream.once('close', () => resolve({ status, message, rstCode: stream.rstCode })),
  );
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(claimBytes, 1);
  stream.write(prefix);
  if (sendBytes > 0) stream.write(Buffer.alloc(sendBytes, 0x20));
  if (end) stream.end();
  return { stream, ended };
}

/**
 * Resolves once the server has answered a PING sent now: it has then read every frame sent
 * before it on `session` (a barrier, not a measure).
 */
export function roundTrip(session: http2.ClientHttp2Session): Promise<void> {
  return new Promise((resolve, reject) => {
    session.ping((err) => (err ? reject(err) : resolve()));
  });
}

/**
 * Destroys `session` on a later turn of the event loop. Node 20's http2 client spins forever
 * in nghttp2_session_mem_send, its memory growing, when a session is destroyed in the same turn
 * as the server resets one of its streams that the client was still sending on.
 */
export async function dropSession(session: http2.ClientHttp2Session): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
  session.destroy();
}
