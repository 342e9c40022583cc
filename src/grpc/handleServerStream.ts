import { status } from '@grpc/grpc-js';
import type { handleServerStreamingCall, ServerWritableStream } from '@grpc/grpc-js';
import { GrpcCallContext, type CallContext } from './CallContext.js';
import { decodedRequest } from './guardDeserialization.js';
import type { HandlerDeps } from './HandlerDeps.js';
import { composeMiddleware } from './Middleware.js';
import { StatusError, toStatus } from './toStatus.js';

/** Context of a server-streaming call. */
export interface StreamContext<Res> extends CallContext {
  /**
   * Queues a message. While the caller does not keep up (the transport's buffer is full),
   * messages are dropped rather than buffered without bound; returns whether it was queued.
   */
  send(message: Res): boolean;
}

/**
 * Turns `async (request, context) => void` into a grpc-js server-streaming handler, inside the
 * middleware chain. The stream ends with OK when the handler returns (also after a server
 * shutdown), CANCELLED when the caller went away, and the toStatus mapping when it throws.
 * The call's log line counts the messages sent and dropped.
 */
export function handleServerStream<Req, Res>(
  service: string,
  method: string,
  deps: HandlerDeps,
  fn: (request: Req, context: StreamContext<Res>) => Promise<void>,
): handleServerStreamingCall<Req, Res> {
  const run = composeMiddleware(deps.middleware);
  return (call: ServerWritableStream<Req, Res>) => {
    const ctx = new GrpcStreamContext(service, method, call, deps.shutdown);
    // The signal is made before the handler runs, so a cancel at any time ends it.
    void ctx.signal;
    run(ctx, async () => {
      try {
        await fn(decodedRequest(call.request), ctx);
      } finally {
        ctx.logFields['sent'] = ctx.sent;
        ctx.logFields['dropped'] = ctx.dropped;
      }
      if (call.cancelled) throw new StatusError(status.CANCELLED, 'cancelled by the caller');
    }).then(
      () => {
        ctx.release();
        call.end();
      },
      (err: unknown) => {
        ctx.release();
        if (call.cancelled) return;
        const mapped = toStatus(err);
        call.emit('error', {
          code: mapped.code,
          details: mapped.details,
          metadata: mapped.metadata,
        });
      },
    );
  };
}

class GrpcStreamContext<Res> extends GrpcCallContext implements StreamContext<Res> {
  sent = 0;
  dropped = 0;
  private waitingForDrain = false;

  constructor(
    service: string,
    method: string,
    private readonly stream: ServerWritableStream<unknown, Res>,
    shutdown?: AbortSignal,
  ) {
    super(service, method, stream, shutdown);
    stream.on('drain', () => {
      this.waitingForDrain = false;
    });
  }

  send(message: Res): boolean {
    if (this.stream.cancelled || this.waitingForDrain) {
      this.dropped++;
      return false;
    }
    this.sent++;
    if (!this.stream.write(message)) this.waitingForDrain = true;
    return true;
  }
}
