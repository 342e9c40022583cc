import * as grpc from '@grpc/grpc-js';
import { AdminServiceService } from '../../clients/typescript/src/gen/quota/v1/admin_service.js';
import { QuotaServiceService } from '../../clients/typescript/src/gen/quota/v1/quota_service.js';

/** A method of QuotaService or AdminService as the generated definitions give it. */
export interface RawMethod {
  /** "/quota.v1.QuotaService/CheckLimit" */
  readonly path: string;
  readonly stream: boolean;
}

/** Every method of both services, from the generated service definitions. */
export const ALL_METHODS: readonly RawMethod[] = [QuotaServiceService, AdminServiceService].flatMap(
  (service) =>
    Object.values(service).map((m: { path: string; responseStream: boolean }) => ({
      path: m.path,
      stream: m.responseStream,
    })),
);

/** How a call ended: its status, the invalid-field it named, and the first message's bytes. */
export interface RawAnswer {
  readonly code: grpc.status;
  readonly details: string;
  readonly field: string | undefined;
  readonly body: Buffer | undefined;
}

const identity = (b: Buffer) => b;

/**
 * A client that sends bodies as given, bytes that do not decode included: serialization is
 * the identity, so the server's deserializer sees exactly `body`. Calls carry
 * `authorization: Bearer <token>` when a token is given.
 */
export class RawClient {
  private readonly client: grpc.Client;

  constructor(
    address: string,
    private readonly token?: string,
  ) {
    this.client = new grpc.Client(address, grpc.credentials.createInsecure());
  }

  /** A unary call, or a server stream's first message or status (see firstOfStream). */
  call(method: RawMethod, body: Buffer, timeoutMs = 10_000): Promise<RawAnswer> {
    return method.stream
      ? this.firstOfStream(method.path, body, timeoutMs)
      : this.unary(method.path, body, timeoutMs);
  }

  unary(path: string, body: Buffer, timeoutMs = 10_000): Promise<RawAnswer> {
    return new Promise((resolve) => {
      this.client.makeUnaryRequest(
        path,
        identity,
        identity,
        body,
        this.metadata(),
        { deadline: Date.now() + timeoutMs },
        (err, response) => resolve(err ? answerOf(err) : ok(response)),
      );
    });
  }

  /**
   * The first message of a server stream (OK, and the stream is cancelled), or the status it
   * ends with; a stream that sends nothing within `quietMs` is open and well: OK.
   */
  firstOfStream(path: string, body: Buffer, timeoutMs = 10_000, quietMs = 300): Promise<RawAnswer> {
    return new Promise((resolve) => {
      const stream = this.client.makeServerStreamRequest(
        path,
        identity,
        identity,
        body,
        this.metadata(),
        { deadline: Date.now() + timeoutMs },
      );
      let done = false;
      const finish = (answer: RawAnswer) => {
        if (done) return;
        done = true;
        clearTimeout(quiet);
        stream.cancel();
        resolve(answer);
      };
      const quiet = setTimeout(() => finish(ok(undefined)), quietMs);
      stream.on('data', (message: Buffer) => finish(ok(message)));
      stream.on('error', (err: grpc.ServiceError) => finish(answerOf(err)));
      stream.on('status', (s: grpc.StatusObject) => {
        if (s.code === grpc.status.OK) finish(ok(undefined));
      });
    });
  }

  close(): void {
    this.client.close();
  }

  private metadata(): grpc.Metadata {
    const md = new grpc.Metadata();
    if (this.token !== undefined) md.set('authorization', `Bearer ${this.token}`);
    return md;
  }
}

function ok(body: Buffer | undefined): RawAnswer {
  return { code: grpc.status.OK, details: '', field: undefined, body };
}

function answerOf(err: grpc.ServiceError): RawAnswer {
  const field = err.metadata?.get('invalid-field')[0];
  return {
    code: err.code,
    details: err.details,
    field: typeof field === 'string' ? field : undefined,
    body: undefined,
  };
}

/** The wire body of message `m` of a generated `type`, for a raw call. */
export const encode = <T>(type: { encode(m: T): { finish(): Uint8Array } }, m: T): Buffer =>
  Buffer.from(type.encode(m).finish());
