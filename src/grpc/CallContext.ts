import type { Metadata, ServerUnaryCall } from '@grpc/grpc-js';

/**
 * What a handler and every middleware know of the call being served. Built lazily from the
 * grpc-js call: a decision that reads none of it pays for none of it.
 */
export interface CallContext {
  /** Full service name, e.g. "quota.v1.QuotaService". */
  readonly service: string;
  /** Method name, e.g. "CheckLimit". */
  readonly method: string;
  /** Request headers. */
  readonly metadata: Metadata;
  /** The caller's address as grpc-js reports it ("127.0.0.1:50432"). */
  readonly peer: string;
  /** When the caller stops waiting; undefined when it set no deadline. */
  readonly deadline: Date | undefined;
  /** Aborts when the caller cancels (or its deadline passes), or the server shuts down. */
  readonly signal: AbortSignal;
  /** Fields that go into this call's one log line; middleware and handlers may add some. */
  readonly logFields: Record<string, unknown>;
}

/** The grpc-js call behind a context: what unary and server-streaming calls have in common. */
type SurfaceCall = Omit<ServerUnaryCall<unknown, unknown>, 'request'>;

/** A call context over a grpc-js call; `shutdown` aborts its signal when the server stops. */
export class GrpcCallContext implements CallContext {
  private controller: AbortController | undefined;
  private fields: Record<string, unknown> | undefined;

  constructor(
    readonly service: string,
    readonly method: string,
    private readonly call: SurfaceCall,
    private readonly shutdown?: AbortSignal,
  ) {}

  get metadata(): Metadata {
    return this.call.metadata;
  }

  get peer(): string {
    return this.call.getPeer();
  }

  get deadline(): Date | undefined {
    const d = this.call.getDeadline();
    if (d instanceof Date) return d;
    return Number.isFinite(d) ? new Date(d) : undefined;
  }

  get signal(): AbortSignal {
    if (!this.controller) {
      const controller = new AbortController();
      this.controller = controller;
      const abort = () => controller.abort();
      if (this.call.cancelled || this.shutdown?.aborted) abort();
      else {
        this.call.once('cancelled', abort);
        this.shutdown?.addEventListener('abort', abort, { once: true });
        // The server-wide signal must not keep a listener per finished call.
        controller.signal.addEventListener(
          'abort',
          () => this.shutdown?.removeEventListener('abort', abort),
          { once: true },
        );
      }
    }
    return this.controller.signal;
  }

  get logFields(): Record<string, unknown> {
    return (this.fields ??= {});
  }

  /** Ends the signal's listeners once the call is over. */
  release(): void {
    this.controller?.abort();
  }
}
