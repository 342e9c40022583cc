import { readFileSync } from 'node:fs';
import http2 from 'node:http2';
import type { Socket } from 'node:net';
import type { ServerLimits } from '../config.js';
import type { Logger } from '../log.js';
import { BurstLog } from './BurstLog.js';

/** What grpc-js creates for each bound address. */
export type Http2Listener = http2.Http2Server | http2.Http2SecureServer;

/**
 * Files the process keeps open besides client connections (database pool, logs, pipes to the
 * embedded PostgreSQL, the metrics endpoint, libuv's own): the connection cap stays this far
 * below the open-file limit.
 */
export const RESERVED_FILES = 128;

const DEADLINE_EXCEEDED = 4;
const RESOURCE_EXHAUSTED = 8;

interface Connection {
  readonly key: string;
  readonly socket: Socket;
  /** Unset until the HTTP/2 session starts (for TLS, once the handshake is done). */
  session: http2.ServerHttp2Session | undefined;
  /** Calls open on it. */
  streams: number;
  /** When its last call ended (or it was accepted), in ms since the epoch. */
  idleSince: number;
  /** Closes it if it never becomes a session (a TLS handshake that stalls). */
  handshakeTimer: NodeJS.Timeout | undefined;
}

/**
 * What grpc-js leaves unbounded, done on the http2 servers it creates (its options cover the
 * rest: message size, streams per connection, idle sessions):
 *
 * - **Connections.** At most `maxConnections` (kept {@link RESERVED_FILES} below the open-file
 *   limit, so that accepting never fails for want of a file). At the cap a new connection
 *   closes the longest-idle connection (no call open) to take its place, so idle connections
 *   never lock new clients out; when every connection has a call open the new one is refused.
 *   Either is logged once per burst.
 * - **A request message that never completes.** grpc-js buffers a request until its last byte
 *   and has no timer for it: a request whose message has not fully arrived (the client has not
 *   half-closed) after `messageTimeoutMs` is answered DEADLINE_EXCEEDED and its stream closed,
 *   and of more than `maxIncompleteRequests` such requests at once the oldest is answered
 *   RESOURCE_EXHAUSTED. Each holds at most `maxMessageBytes` plus one HTTP/2 flow-control window
 *   (64 KiB), which bounds them all together. The same closes the streams of requests grpc-js
 *   refused as too large: it answers them, but leaves them open while the client sends nothing.
 *   Reflection's ServerReflectionInfo, the one method taking a stream of requests, is held to the
 *   same rule, so that no client can hold a connection busy without a token: buf curl keeps
 *   that stream open while its call runs, and loses only it, having what it needed from it.
 * - **A TLS handshake that stalls.** grpc-js's idle timeout counts from the HTTP/2 session,
 *   which starts after the handshake: a connection without a session is closed after
 *   `idleTimeoutMs`.
 *
 * Connections are told apart by remote address and port, the one identity that the raw
 * socket, the TLS socket and the HTTP/2 session all report.
 */
export class ConnectionGuard {
  /** The connection cap in force: `maxConnections`, lowered under the open-file limit. */
  readonly maxConnections: number;
  private readonly connections = new Map<string, Connection>();
  private readonly bySession = new WeakMap<http2.Http2Session, Connection>();
  /** Requests whose message has not fully arrived, oldest first: when each began, its method. */
  private readonly incomplete = new Map<
    http2.ServerHttp2Stream,
    { readonly started: number; readonly path: string | undefined }
  >();
  private sweeper: NodeJS.Timeout | undefined;
  private readonly evictedLog: BurstLog;
  private readonly refusedLog: BurstLog;
  private readonly cutLog: BurstLog;

  constructor(
    private readonly limits: ServerLimits,
    private readonly logger: Logger,
    openFiles: number | undefined = openFileLimit(),
  ) {
    this.maxConnections =
      openFiles === undefined
        ? limits.maxConnections
        : Math.max(1, Math.min(limits.maxConnections, openFiles - RESERVED_FILES));
    if (this.maxConnections < limits.maxConnections) {
      logger.warn(
        {
          configured: limits.maxConnections,
          maxConnections: this.maxConnections,
          openFileLimit: openFiles,
          reservedFiles: RESERVED_FILES,
        },
        'QUOTA_MAX_CONNECTIONS lowered to fit the open-file limit',
      );
    }
    this.evictedLog = new BurstLog(
      logger,
      'connection cap reached: closed the longest-idle connection for a new one',
    );
    this.refusedLog = new BurstLog(
      logger,
      'connection cap reached and every connection has a call open: new connection refused',
    );
    this.cutLog = new BurstLog(logger, 'request message incomplete: call cut');
  }

  /** Connections open now. */
  get open(): number {
    return this.connections.size;
  }

  /** Guards one http2 server that grpc-js created; call before it accepts connections. */
  attach(server: Http2Listener): void {
    // Before grpc-js and TLS see the socket: a refused one is closed before any work on it.
    server.prependListener('connection', (socket: Socket) => this.onConnection(socket));
    server.on('session', (session: http2.ServerHttp2Session) => this.onSession(session));
    server.on('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) =>
      this.onStream(stream, headers[':path']),
    );
    if (this.sweeper === undefined) {
      // Requests are kept in start order and share one timeout: the expired ones are at the
      // head, so one timer serves them all (cut between 1 and 1.1 timeouts after they start).
      const every = Math.min(1000, Math.max(10, Math.floor(this.limits.messageTimeoutMs / 10)));
      this.sweeper = setInterval(() => this.sweep(), every);
      this.sweeper.unref();
    }
  }

  /** Stops the timer; connections are closed by the server's own shutdown. */
  close(): void {
    clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  private onConnection(socket: Socket): void {
    if (socket.remoteAddress === undefined) return; // already gone
    const key = `${socket.remoteAddress}:${socket.remotePort}`;
    if (this.connections.size >= this.maxConnections) {
      const evicted = this.evictIdlest();
      if (evicted === undefined) {
        this.refusedLog.event({ maxConnections: this.maxConnections, peer: key });
        socket.destroy();
        return;
      }
      this.evictedLog.event({
        maxConnections: this.maxConnections,
        closed: evicted.key,
        idleMs: Date.now() - evicted.idleSince,
        peer: key,
      });
    }
    const conn: Connection = {
      key,
      socket,
      session: undefined,
      streams: 0,
      idleSince: Date.now(),
      handshakeTimer: undefined,
    };
    this.connections.set(key, conn);
    socket.once('close', () => {
      clearTimeout(conn.handshakeTimer);
      if (this.connections.get(key) === conn) this.connections.delete(key);
    });
    conn.handshakeTimer = setTimeout(() => {
      if (conn.session === undefined) socket.destroy();
    }, this.limits.idleTimeoutMs);
    conn.handshakeTimer.unref();
  }

  private onSession(session: http2.ServerHttp2Session): void {
    const socket = session.socket;
    const conn = this.connections.get(`${socket?.remoteAddress}:${socket?.remotePort}`);
    if (conn === undefined || conn.session !== undefined) return;
    conn.session = session;
    conn.idleSince = Date.now();
    clearTimeout(conn.handshakeTimer);
    this.bySession.set(session, conn);
  }

  private onStream(stream: http2.ServerHttp2Stream, path: string | undefined): void {
    const conn = stream.session && this.bySession.get(stream.session);
    if (conn) conn.streams++;
    const started = Date.now();
    // `on`, not `once`: each is emitted once, and this is every call's path.
    stream.on('close', () => {
      this.incomplete.delete(stream);
      if (conn && --conn.streams === 0) conn.idleSince = Date.now();
    });
    if (stream.endAfterHeaders) return;
    this.incomplete.set(stream, { started, path });
    stream.on('end', () => this.incomplete.delete(stream));
    if (this.incomplete.size > this.limits.maxIncompleteRequests) {
      const [oldest] = this.incomplete.keys();
      if (oldest !== undefined) {
        this.cut(
          oldest,
          RESOURCE_EXHAUSTED,
          `too many requests whose message has not fully arrived (${this.limits.maxIncompleteRequests}); this was the oldest`,
        );
      }
    }
  }

  private sweep(): void {
    const expired = Date.now() - this.limits.messageTimeoutMs;
    for (const [stream, { started }] of this.incomplete) {
      if (started > expired) break;
      this.cut(
        stream,
        DEADLINE_EXCEEDED,
        `request message incomplete after ${this.limits.messageTimeoutMs} ms`,
      );
    }
  }

  /**
   * Answers `code` (unless grpc-js has answered already) and closes the stream, which also
   * frees what grpc-js buffered of its message.
   */
  private cut(stream: http2.ServerHttp2Stream, code: number, details: string): void {
    const path = this.incomplete.get(stream)?.path;
    this.incomplete.delete(stream);
    if (stream.closed || stream.destroyed) return;
    const socket = stream.session?.socket;
    this.cutLog.event({
      code,
      details,
      path,
      peer: `${socket?.remoteAddress}:${socket?.remotePort}`,
    });
    try {
      let answered = stream.writableEnded;
      if (!stream.headersSent) {
        stream.respond(
          {
            ':status': 200,
            'content-type': 'application/grpc+proto',
            'grpc-status': String(code),
            'grpc-message': encodeURIComponent(details),
          },
          { endStream: true },
        );
        answered = true;
      }
      // NO_ERROR after a complete answer ("stop sending", once the answer is out); a stream
      // grpc-js is still answering is cancelled.
      stream.close(answered ? http2.constants.NGHTTP2_NO_ERROR : http2.constants.NGHTTP2_CANCEL);
    } catch {
      stream.destroy();
    }
  }

  /** Closes the connection with no call open that has been idle longest; undefined if none. */
  private evictIdlest(): Connection | undefined {
    let victim: Connection | undefined;
    for (const c of this.connections.values()) {
      if (c.streams === 0 && (victim === undefined || c.idleSince < victim.idleSince)) victim = c;
    }
    if (victim === undefined) return undefined;
    // It no longer counts: the new connection takes its place while it closes.
    this.connections.delete(victim.key);
    const { session, socket } = victim;
    if (session === undefined || session.destroyed) {
      socket.destroy();
    } else {
      // GOAWAY first: a client that sends a call meanwhile is told to retry it elsewhere.
      session.close();
      setTimeout(() => session.destroy(), 1000).unref();
    }
    return victim;
  }
}

/** The soft limit on open files of this process (Node raises it to the hard limit at start). */
export function openFileLimit(): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = line?.split(/\s{2,}/)[1];
    return soft === undefined || soft === 'unlimited' ? undefined : Number(soft);
  } catch {
    return undefined;
  }
}
