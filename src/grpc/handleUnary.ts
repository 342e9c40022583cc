import { status } from '@grpc/grpc-js';
import type { handleUnaryCall, ServerUnaryCall } from '@grpc/grpc-js';
import { startCall, type HandlerDeps } from './startCall.js';

export type { HandlerDeps } from './startCall.js';

/**
 * Turns `async (request) => response` into a grpc-js unary handler: one log line per call
 * (method, status, ms), errors through the toStatus boundary.
 */
export function handleUnary<Req, Res>(
  method: string,
  deps: HandlerDeps,
  fn: (request: Req) => Promise<Res>,
): handleUnaryCall<Req, Res> {
  return (call: ServerUnaryCall<Req, Res>, callback) => {
    const record = startCall(method, deps);
    fn(call.request).then(
      (response) => {
        record.end(status.OK);
        callback(null, response);
      },
      (err: unknown) => {
        const mapped = record.fail(err);
        record.end(mapped.code);
        callback({ code: mapped.code, details: mapped.details, metadata: mapped.metadata });
      },
    );
  };
}
