/**
 * The bench's floor: a grpc-js server with the service's contract and server options that
 * answers CheckLimit from memory, with no database, rules, logging or metrics. Measured at the
 * same offered rate as the real server, it shows what the machine and grpc-js alone allow at
 * that moment, so a p99 can be read against what was possible when it was taken.
 *
 * Run as a child process by the bench: `node floorServer.js <port>`; SIGTERM stops it.
 */
import * as grpc from '@grpc/grpc-js';
import { Scope } from '@quota-authority/client';
import { AdminServiceService } from '../clients/typescript/src/gen/quota/v1/admin_service.js';
import {
  CheckLimitResponse,
  QuotaServiceService,
  type CheckLimitRequest,
} from '../clients/typescript/src/gen/quota/v1/quota_service.js';
import { loadConfig } from '../src/config.js';
import { serverOptions } from '../src/grpc/GrpcServer.js';

/**
 * Every unary method of `service` answering its response type's default message; the bench
 * calls only a few, and never a streaming one (those are left out, so they answer UNIMPLEMENTED).
 */
function defaultAnswers(service: grpc.ServiceDefinition): grpc.UntypedServiceImplementation {
  return Object.fromEntries(
    Object.entries(service)
      .filter(([, method]) => !method.requestStream && !method.responseStream)
      .map(([name, method]) => {
        // An empty buffer decodes to the message with every field at its default.
        const empty: unknown = method.responseDeserialize(Buffer.alloc(0));
        const answer: grpc.handleUnaryCall<unknown, unknown> = (_call, callback) =>
          callback(null, empty);
        return [name, answer];
      }),
  );
}

/** An answer the size and shape of a real one: allowed, one applied limit. */
function allowed(userId: string): CheckLimitResponse {
  return CheckLimitResponse.fromPartial({
    allowed: true,
    limits: [
      {
        rule: 'bench-user',
        scope: Scope.SCOPE_USER,
        key: userId,
        limit: 1_000_000_000,
        remaining: 999_999_999,
        window: { seconds: 60, nanos: 0 },
        resetAfter: { seconds: 60, nanos: 0 },
      },
    ],
    throttleFactor: 1,
  });
}

const checkLimit: grpc.handleUnaryCall<CheckLimitRequest, CheckLimitResponse> = (call, callback) =>
  callback(null, allowed(call.request.userId));

// The real server's options at their defaults, so that the two differ only in what they do
// per call (the floor has no ConnectionGuard: it is grpc-js alone).
const server = new grpc.Server(serverOptions(loadConfig({}).server));
server.addService(QuotaServiceService, {
  ...defaultAnswers(QuotaServiceService),
  checkLimit,
});
server.addService(AdminServiceService, defaultAnswers(AdminServiceService));
server.bindAsync(
  `127.0.0.1:${process.argv[2] ?? '0'}`,
  grpc.ServerCredentials.createInsecure(),
  (err) => {
    if (err) {
      console.error(err);
      process.exit(1);
    }
  },
);
process.once('SIGTERM', () => server.tryShutdown(() => process.exit(0)));
