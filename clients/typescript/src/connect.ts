import {
  credentials as grpcCredentials,
  Metadata,
  type CallOptions,
  type ChannelCredentials,
  type ClientOptions,
  type ClientReadableStream,
  type ClientUnaryCall,
  type ServiceError,
} from '@grpc/grpc-js';
import { AdminServiceClient } from './gen/quota/v1/admin_service.js';
import { QuotaServiceClient } from './gen/quota/v1/quota_service.js';

/** Options of {@link connect}. */
export interface ConnectOptions {
  /**
   * Channel credentials.
   * @default insecure (plaintext)
   */
  credentials?: ChannelCredentials;
  /**
   * Deadline of each unary call, in milliseconds; 0 means none.
   * @default 5000
   */
  timeoutMs?: number;
  /**
   * Bearer token sent as `authorization` metadata on every call.
   * @default none
   */
  token?: string;
  /** grpc-js channel options. @default {} */
  channelOptions?: ClientOptions;
}

type Last<T extends unknown[]> = T extends [...unknown[], infer L] ? L : never;
type Unary<F> = F extends (request: infer Req, ...rest: infer Rest) => ClientUnaryCall
  ? Last<Rest> extends (error: ServiceError | null, response: infer Res) => void
    ? (request: Req, options?: { metadata?: Metadata; timeoutMs?: number }) => Promise<Res>
    : never
  : never;
type Stream<F> = F extends (request: infer Req, ...rest: never[]) => ClientReadableStream<infer Res>
  ? (request: Req, options?: { metadata?: Metadata }) => ClientReadableStream<Res>
  : never;

/** A service's methods: unary ones return promises, server streams stay streams. */
export type Promisified<C> = {
  [K in keyof C as C[K] extends (...args: never[]) => unknown ? K : never]: C[K] extends (
    ...args: never[]
  ) => ClientReadableStream<unknown>
    ? Stream<C[K]>
    : Unary<C[K]>;
};

/** A connection to one quota-authority server. */
export interface QuotaConnection {
  readonly quota: Promisified<QuotaServiceClient>;
  readonly admin: Promisified<AdminServiceClient>;
  /** The raw generated clients, for call options not covered here. */
  readonly raw: { readonly quota: QuotaServiceClient; readonly admin: AdminServiceClient };
  close(): void;
}

/** Typed error of a failed call: the gRPC status code and details, with the original as cause. */
export class QuotaCallError extends Error {
  readonly code: number;
  readonly details: string;
  readonly metadata: Metadata;
  constructor(err: ServiceError) {
    super(err.message, { cause: err });
    this.name = 'QuotaCallError';
    this.code = err.code;
    this.details = err.details;
    this.metadata = err.metadata;
  }
}

/** Connects to `address` (host:port). */
export function connect(address: string, options: ConnectOptions = {}): QuotaConnection {
  const creds = options.credentials ?? grpcCredentials.createInsecure();
  const quota = new QuotaServiceClient(address, creds, options.channelOptions);
  const admin = new AdminServiceClient(address, creds, options.channelOptions);
  const timeoutMs = options.timeoutMs ?? 5000;
  const wrap = <C extends object>(client: C): Promisified<C> =>
    new Proxy({} as Promisified<C>, {
      get(_target, prop: string) {
        const method = (client as Record<string, unknown>)[prop];
        if (typeof method !== 'function') return undefined;
        const def = (
          client.constructor as { service?: Record<string, { responseStream: boolean }> }
        ).service?.[prop];
        return (
          request: unknown,
          callOptions: { metadata?: Metadata; timeoutMs?: number } = {},
        ) => {
          const metadata = callOptions.metadata ?? new Metadata();
          if (options.token) metadata.set('authorization', `Bearer ${options.token}`);
          if (def?.responseStream) return method.call(client, request, metadata);
          const ms = callOptions.timeoutMs ?? timeoutMs;
          const opts: Partial<CallOptions> = ms > 0 ? { deadline: Date.now() + ms } : {};
          return new Promise((resolve, reject) => {
            method.call(
              client,
              request,
              metadata,
              opts,
              (err: ServiceError | null, response: unknown) => {
                if (err) reject(new QuotaCallError(err));
                else resolve(response);
              },
            );
          });
        };
      },
    });
  return {
    quota: wrap(quota),
    admin: wrap(admin),
    raw: { quota, admin },
    close() {
      quota.close();
      admin.close();
    },
  };
}
