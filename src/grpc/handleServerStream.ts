import { status } from '@grpc/grpc-js';
import type { handleServerStreamingCall, ServerWritableStream } from '@grpc/grpc-js';
import { startCall, type HandlerDeps } from './startCall.js';

/** Context of a server-streaming call. */
export interface StreamContext<Res> {
  /** Aborts when the caller cancels or the server shuts down: the handler should then return. */
  readonly signal: AbortSignal;
  /**
   * Queues a message. While the caller does not keep up (the transport's buffer is full),
   * messages are dropped rather than buffered without bound; returns whether it was queued.
   */
  send(message: Res): boolean;
}

/**
 * Turns `async (request, context) => void` into a grpc-js server-streaming handler. The stream
 * ends with OK when the handler returns (also after a server shutdown), and with the toStatus
 * mapping when it throws. One log line per call, when it ends: method, status, ms, messages.
 */
export function handleServerStream<Req, Res>(
  method: string,
  deps: HandlerDeps & { readonly shutdown?: AbortSignal },
  fn: (request: Req, context: StreamContext<Res>) => Promise<void>,
): handleServerStreamingCall<Req, Res> {
  return (call: ServerWritableStream<Req, Res>) => {
    const record = startCall(method, deps);
    const controller = new AbortController();
    let cancelled = false;
    let waitingForDrain = false;
    let sent = 0;
    let dropped = 0;
    const onShutdown = () => controller.abort();
    deps.shutdown?.addEventListener('abort', onShutdown, { once: true });
    if (deps.shutdown?.aborted) controller.abort();
    call.on('cancelled', () => {
      cancelled = true;
      controller.abort();
    });
    call.on('drain', () => {
      waitingForDrain = false;
    });
    const finish = (code: status) => {
      deps.shutdown?.removeEventListener('abort', onShutdown);
      record.end(code, { sent, dropped });
    };
    const context: StreamContext<Res> = {
      signal: controller.signal,
      send(message) {
        if (cancelled || waitingForDrain) {
          dropped++;
          return false;
        }
        sent++;
        if (!call.write(message)) waitingForDrain = true;
        return true;
      },
    };
    fn(call.request, context).then(
      () => {
        controller.abort();
        if (cancelled) return finish(status.CANCELLED);
        finish(status.OK);
        call.end();
      },
      (err: unknown) => {
        controller.abort();
        if (cancelled) return finish(status.CANCELLED);
        const mapped = record.fail(err);
        finish(mapped.code);
        call.emit('error', {
          code: mapped.code,
          details: mapped.details,
          metadata: mapped.metadata,
        });
      },
    );
  };
}
