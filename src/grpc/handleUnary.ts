import { status } from '@grpc/grpc-js';
import type { handleUnaryCall, ServerUnaryCall } from '@grpc/grpc-js';
import type { Logger } from '../log.js';
import type { CallObserver } from './CallObserver.js';
import { toStatus } from './toStatus.js';

/** Context handed to every handler. */
export interface CallContext {
  readonly method: string;
  /** The caller's address; computed on first read, since most handlers never need it. */
  readonly peer: string;
}

export interface HandlerDeps {
  readonly logger: Logger;
  readonly observer?: CallObserver;
}

/**
 * Turns `async (request, context) => response` into a grpc-js unary handler: one log line per
 * call (method, status, ms), errors through the toStatus boundary.
 */
export function handleUnary<Req, Res>(
  method: string,
  deps: HandlerDeps,
  fn: (request: Req, context: CallContext) => Promise<Res>,
): handleUnaryCall<Req, Res> {
  return (call: ServerUnaryCall<Req, Res>, callback) => {
    const started = performance.now();
    const finish = (code: status) => {
      const ms = Math.round((performance.now() - started) * 1000) / 1000;
      deps.observer?.observe(method, code, ms);
      deps.logger.info({ method, status: status[code], ms }, 'call');
    };
    const context: CallContext = {
      method,
      get peer() {
        return call.getPeer();
      },
    };
    fn(call.request, context).then(
      (response) => {
        finish(status.OK);
        callback(null, response);
      },
      (err: unknown) => {
        const mapped = toStatus(err);
        if (mapped.internal) deps.logger.error({ err, method }, 'internal error');
        finish(mapped.code);
        callback({ code: mapped.code, details: mapped.details, metadata: mapped.metadata });
      },
    );
  };
}
