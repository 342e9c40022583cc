import type { handleUnaryCall, ServerUnaryCall } from '@grpc/grpc-js';
import { GrpcCallContext, type CallContext } from './CallContext.js';
import { decodedRequest } from './guardDeserialization.js';
import type { HandlerDeps } from './HandlerDeps.js';
import { composeMiddleware } from './Middleware.js';
import { toStatus } from './toStatus.js';

/**
 * Turns `async (request, context) => response` into a grpc-js unary handler: the middleware
 * chain runs around it, and any error leaves through the one toStatus boundary.
 */
export function handleUnary<Req, Res>(
  service: string,
  method: string,
  deps: HandlerDeps,
  fn: (request: Req, ctx: CallContext) => Promise<Res>,
): handleUnaryCall<Req, Res> {
  const run = composeMiddleware(deps.middleware);
  return (call: ServerUnaryCall<Req, Res>, callback) => {
    const ctx = new GrpcCallContext(service, method, call, deps.shutdown);
    let response: Res;
    run(ctx, async () => {
      response = await fn(decodedRequest(call.request), ctx);
    }).then(
      () => {
        ctx.release();
        callback(null, response);
      },
      (err: unknown) => {
        ctx.release();
        const mapped = toStatus(err);
        callback({ code: mapped.code, details: mapped.details, metadata: mapped.metadata });
      },
    );
  };
}
