import * as grpc from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';

/** grpc.health.v1.Health/Check for `service` ("" is the whole server); resolves with the status. */
export function healthCheck(
  address: string,
  service: string,
  credentials = grpc.credentials.createInsecure(),
): Promise<string> {
  const Client = grpc.makeGenericClientConstructor(healthService, 'Health');
  const client = new Client(address, credentials) as unknown as {
    check(
      req: { service: string },
      cb: (err: grpc.ServiceError | null, res: { status: string }) => void,
    ): void;
    close(): void;
  };
  return new Promise((resolve, reject) =>
    client.check({ service }, (err, res) => {
      client.close();
      if (err) reject(err);
      else resolve(res.status);
    }),
  );
}
