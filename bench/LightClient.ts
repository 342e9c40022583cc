import net from 'node:net';
import {
  CheckCommandQuotaRequest,
  CheckCommandQuotaResponse,
  CheckLimitRequest,
  CheckLimitResponse,
  RecordExecutionRequest,
  RecordExecutionResponse,
} from '../clients/typescript/src/gen/quota/v1/quota_service.js';

/** A unary method the light client calls: its path and its messages' codecs. */
export interface UnaryMethod<Req, Res> {
  readonly path: string;
  readonly encode: (request: Req) => Uint8Array;
  readonly decode: (bytes: Uint8Array) => Res;
}

export const CHECK_LIMIT: UnaryMethod<CheckLimitRequest, CheckLimitResponse> = {
  path: '/quota.v1.QuotaService/CheckLimit',
  encode: (r) => CheckLimitRequest.encode(r).finish(),
  decode: (b) => CheckLimitResponse.decode(b),
};

export const CHECK_COMMAND_QUOTA: UnaryMethod<CheckCommandQuotaRequest, CheckCommandQuotaResponse> =
  {
    path: '/quota.v1.QuotaService/CheckCommandQuota',
    encode: (r) => CheckCommandQuotaRequest.encode(r).finish(),
    decode: (b) => CheckCommandQuotaResponse.decode(b),
  };

export const RECORD_EXECUTION: UnaryMethod<RecordExecutionRequest, RecordExecutionResponse> = {
  path: '/quota.v1.QuotaService/RecordExecution',
  encode: (r) => RecordExecutionRequest.encode(r).finish(),
  decode: (b) => RecordExecutionResponse.decode(b),
};

/**
 * A minimal gRPC unary client for one method, straight on one TCP connection with its own HTTP/2
 * framing, for the load generator only. It shares two cores with the server and the database,
 * so what it costs is measured as the service's latency. Both grpc-js and node:http2 create a
 * wrapper object per stream that V8's scavenger keeps alive (a modified API object behind a weak
 * handle), so every call's objects are promoted and die only in a full collection: measured,
 * 6 MB promoted per scavenge and 10–15 ms pauses at 2,000 calls/s, all counted as server latency.
 * Here a call is a map entry and two buffers.
 *
 * What it speaks: prior-knowledge HTTP/2 over cleartext (RFC 9113), request headers indexed the
 * way real clients' HPACK encoders index them (see requestHeaderBlocks; no Huffman), flow
 * control both ways, SETTINGS and PING acknowledged, GOAWAY and RST_STREAM fail the calls they end. Response headers
 * are not decoded: a call succeeds when its stream carries a response message and then ends,
 * which is how a gRPC server answers a unary call with status OK (an error is a trailers-only
 * response, with no message).
 */
export class LightClient<Req, Res> {
  private readonly socket: net.Socket;
  private readonly calls = new Map<number, Call<Res>>();
  private readonly queued: { id: number; frames: Buffer }[] = [];
  private readonly headerBlocks: { first: Buffer; rest: Buffer };
  private headersSent = false;
  private nextStreamId = 1;
  private input: Buffer = Buffer.alloc(0);
  private sendWindow = INITIAL_WINDOW;
  private streamSendWindow = INITIAL_WINDOW;
  private maxConcurrent = Number.POSITIVE_INFINITY;
  private unacknowledgedBytes = 0;
  private failure: Error | undefined;

  /** `token` goes in every request's `authorization: Bearer` header; none when undefined. */
  constructor(
    address: string,
    private readonly method: UnaryMethod<Req, Res>,
    token?: string,
  ) {
    const url = new URL(`http://${address}`);
    this.headerBlocks = requestHeaderBlocks(
      url.host,
      method.path,
      token === undefined ? undefined : `Bearer ${token}`,
    );
    this.socket = net.connect({ host: url.hostname, port: Number(url.port), noDelay: true });
    this.socket.on('data', (chunk: Buffer) => this.receive(chunk));
    this.socket.on('error', (err) => this.failAll(err));
    this.socket.on('close', () => this.failAll(new Error('connection closed')));
    // Preface, our settings (large stream windows, so the server never waits on us), and the
    // connection window raised to its maximum.
    this.socket.write(
      Buffer.concat([
        PREFACE,
        frame(FRAME.SETTINGS, 0, 0, settingsPayload([[SETTING.INITIAL_WINDOW_SIZE, MAX_WINDOW]])),
        frame(FRAME.WINDOW_UPDATE, 0, 0, uint32(MAX_WINDOW - INITIAL_WINDOW)),
      ]),
    );
  }

  /** The connection failed or the server closed it (GOAWAY): calls fail at once from then on. */
  get closed(): boolean {
    return this.failure !== undefined;
  }

  call(request: Req): Promise<Res> {
    if (this.failure) return Promise.reject(this.failure);
    const body = this.method.encode(request);
    const message = Buffer.allocUnsafe(5 + body.length);
    message.writeUInt8(0, 0);
    message.writeUInt32BE(body.length, 1);
    message.set(body, 5);
    const id = this.nextStreamId;
    this.nextStreamId += 2;
    return new Promise((resolve, reject) => {
      this.calls.set(id, { resolve, reject, data: [], sentBytes: message.length });
      // Frames are sent in the order they are built, so the first call's block fills the
      // server's dynamic table before any later block refers to it.
      const block = this.headersSent ? this.headerBlocks.rest : this.headerBlocks.first;
      this.headersSent = true;
      const frames = Buffer.concat([
        frame(FRAME.HEADERS, FLAG.END_HEADERS, id, block),
        frame(FRAME.DATA, FLAG.END_STREAM, id, message),
      ]);
      this.queued.push({ id, frames });
      this.flush();
    });
  }

  close(): void {
    this.socket.end(frame(FRAME.GOAWAY, 0, 0, Buffer.concat([uint32(0), uint32(0)])));
  }

  /** Sends queued requests while the server's windows and stream limit allow. */
  private flush(): void {
    const out: Buffer[] = [];
    while (this.queued.length > 0) {
      const next = this.queued[0]!;
      const call = this.calls.get(next.id);
      if (!call) {
        this.queued.shift();
        continue;
      }
      const open = this.calls.size - this.queued.length;
      if (
        open >= this.maxConcurrent ||
        call.sentBytes > this.sendWindow ||
        call.sentBytes > this.streamSendWindow
      )
        break;
      this.sendWindow -= call.sentBytes;
      out.push(next.frames);
      this.queued.shift();
    }
    if (out.length > 0) this.socket.write(out.length === 1 ? out[0]! : Buffer.concat(out));
  }

  private receive(chunk: Buffer): void {
    this.input = this.input.length === 0 ? chunk : Buffer.concat([this.input, chunk]);
    let offset = 0;
    const replies: Buffer[] = [];
    while (this.input.length - offset >= 9) {
      const length = this.input.readUIntBE(offset, 3);
      if (this.input.length - offset < 9 + length) break;
      const type = this.input[offset + 3]!;
      const flags = this.input[offset + 4]!;
      const id = this.input.readUInt32BE(offset + 5) & 0x7fffffff;
      const payload = this.input.subarray(offset + 9, offset + 9 + length);
      offset += 9 + length;
      this.onFrame(type, flags, id, payload, replies);
    }
    this.input = offset === this.input.length ? Buffer.alloc(0) : this.input.subarray(offset);
    if (replies.length > 0) this.socket.write(Buffer.concat(replies));
    this.flush();
  }

  private onFrame(type: number, flags: number, id: number, payload: Buffer, replies: Buffer[]) {
    switch (type) {
      case FRAME.DATA: {
        // Give back what the server spent of our connection window, in large steps.
        this.unacknowledgedBytes += payload.length;
        if (this.unacknowledgedBytes >= 1 << 20) {
          replies.push(frame(FRAME.WINDOW_UPDATE, 0, 0, uint32(this.unacknowledgedBytes)));
          this.unacknowledgedBytes = 0;
        }
        const call = this.calls.get(id);
        if (call) call.data.push(Buffer.from(unpad(flags, payload)));
        if (flags & FLAG.END_STREAM) this.finish(id);
        break;
      }
      case FRAME.HEADERS:
        if (flags & FLAG.END_STREAM) this.finish(id);
        break;
      case FRAME.RST_STREAM:
        this.fail(id, new Error(`stream reset, HTTP/2 error ${payload.readUInt32BE(0)}`));
        break;
      case FRAME.SETTINGS:
        if (flags & FLAG.ACK) break;
        for (let i = 0; i + 6 <= payload.length; i += 6) {
          const value = payload.readUInt32BE(i + 2);
          const setting = payload.readUInt16BE(i);
          if (setting === SETTING.MAX_CONCURRENT_STREAMS) this.maxConcurrent = value;
          if (setting === SETTING.INITIAL_WINDOW_SIZE) this.streamSendWindow = value;
        }
        replies.push(frame(FRAME.SETTINGS, FLAG.ACK, 0, Buffer.alloc(0)));
        break;
      case FRAME.PING:
        if (!(flags & FLAG.ACK)) replies.push(frame(FRAME.PING, FLAG.ACK, 0, payload));
        break;
      case FRAME.GOAWAY:
        this.failAll(new Error(`GOAWAY, HTTP/2 error ${payload.readUInt32BE(4)}`));
        break;
      case FRAME.WINDOW_UPDATE:
        // Each request is one small DATA frame on a new stream, so only the connection window
        // can run short.
        if (id === 0) this.sendWindow += payload.readUInt32BE(0) & 0x7fffffff;
        break;
      default:
        // PRIORITY, CONTINUATION (of headers this client does not read), unknown types.
        break;
    }
  }

  private finish(id: number): void {
    const call = this.calls.get(id);
    if (!call) return;
    this.calls.delete(id);
    const data = call.data.length === 1 ? call.data[0]! : Buffer.concat(call.data);
    if (data.length < 5) {
      // Its status is in headers this client does not decode: the grpc-js client names it.
      call.reject(
        new Error(
          'call ended without a response message: a gRPC error status (QUOTA_BENCH_CLIENT=grpc-js names it)',
        ),
      );
      return;
    }
    call.resolve(this.method.decode(data.subarray(5, 5 + data.readUInt32BE(1))));
  }

  private fail(id: number, err: Error): void {
    const call = this.calls.get(id);
    if (!call) return;
    this.calls.delete(id);
    call.reject(err);
  }

  private failAll(err: Error): void {
    this.failure ??= err;
    for (const id of [...this.calls.keys()]) this.fail(id, err);
  }
}

interface Call<Res> {
  readonly resolve: (response: Res) => void;
  readonly reject: (err: Error) => void;
  readonly data: Buffer[];
  readonly sentBytes: number;
}

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const INITIAL_WINDOW = 65_535;
const MAX_WINDOW = 2 ** 31 - 1;
const FRAME = {
  DATA: 0,
  HEADERS: 1,
  RST_STREAM: 3,
  SETTINGS: 4,
  PING: 6,
  GOAWAY: 7,
  WINDOW_UPDATE: 8,
} as const;
const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4, PADDED: 0x8 } as const;
const SETTING = { MAX_CONCURRENT_STREAMS: 3, INITIAL_WINDOW_SIZE: 4 } as const;

function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const out = Buffer.allocUnsafe(9 + payload.length);
  out.writeUIntBE(payload.length, 0, 3);
  out.writeUInt8(type, 3);
  out.writeUInt8(flags, 4);
  out.writeUInt32BE(streamId, 5);
  payload.copy(out, 9);
  return out;
}

function uint32(n: number): Buffer {
  const out = Buffer.allocUnsafe(4);
  out.writeUInt32BE(n, 0);
  return out;
}

function settingsPayload(settings: [number, number][]): Buffer {
  const out = Buffer.allocUnsafe(6 * settings.length);
  settings.forEach(([id, value], i) => {
    out.writeUInt16BE(id, 6 * i);
    out.writeUInt32BE(value, 6 * i + 2);
  });
  return out;
}

function unpad(flags: number, payload: Buffer): Buffer {
  if (!(flags & FLAG.PADDED)) return payload;
  return payload.subarray(1, payload.length - payload[0]!);
}

/** An HPACK integer with an `n`-bit prefix whose high bits are `high` (RFC 7541, 5.1). */
function hpackInt(value: number, n: number, high: number): number[] {
  const max = (1 << n) - 1;
  if (value < max) return [high | value];
  const out = [high | max];
  let rest = value - max;
  while (rest >= 128) {
    out.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return out;
}

function hpackString(s: string): number[] {
  const bytes = Buffer.from(s, 'latin1');
  return [...hpackInt(bytes.length, 7, 0), ...bytes];
}

/**
 * The request headers as a real HPACK encoder sends them (RFC 7541): `:method POST` and
 * `:scheme http` by their static-table index; the path, authority, content-type, te and
 * authorization as literals with incremental indexing on the first call, which puts them in the
 * server's dynamic table, and by their dynamic-table index on every later call. grpc-go's encoder
 * indexes `authorization` like any other header; node:http2, under grpc-js, sends it as a
 * never-indexed literal on every call instead (about 60 more bytes a call for the server to
 * decode). Indexed here, as the bench's other headers are.
 */
function requestHeaderBlocks(
  authority: string,
  path: string,
  authorization: string | undefined,
): { first: Buffer; rest: Buffer } {
  const indexed = (index: number) => hpackInt(index, 7, 0x80);
  const byIndex = (index: number, value: string) => [
    ...hpackInt(index, 6, 0x40),
    ...hpackString(value),
  ];
  const byName = (name: string, value: string) => [
    0x40,
    ...hpackString(name),
    ...hpackString(value),
  ];
  const first = Buffer.from([
    ...indexed(3),
    ...indexed(6),
    ...byIndex(4, path),
    ...byIndex(1, authority),
    ...byIndex(31, 'application/grpc'),
    ...byName('te', 'trailers'),
    // authorization is entry 23 of the static table.
    ...(authorization === undefined ? [] : byIndex(23, authorization)),
  ]);
  // Newest entry first (RFC 7541, 2.3.3): without authorization te is 62, content-type 63,
  // authority 64, path 65; authorization, when sent, is 62 and shifts the others by one.
  const shift = authorization === undefined ? 0 : 1;
  const rest = Buffer.from([
    ...indexed(3),
    ...indexed(6),
    ...indexed(65 + shift),
    ...indexed(64 + shift),
    ...indexed(63 + shift),
    ...indexed(62 + shift),
    ...(authorization === undefined ? [] : indexed(62)),
  ]);
  return { first, rest };
}
