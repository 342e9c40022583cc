import http2 from 'node:http2';
import net from 'node:net';
import {
  CheckLimitRequest,
  CheckLimitResponse,
} from '../clients/typescript/src/gen/quota/v1/quota_service.js';

/**
 * A minimal gRPC unary client for CheckLimit straight on node:http2, for the load generator
 * only: it shares the machine with the server and the database, and grpc-js spends about as much
 * CPU per call on the client side as the server does, which would otherwise be measured as the
 * service's cost. Wire format: a 5-byte prefix (compressed flag, big-endian length), then the
 * message; the status comes in the trailers.
 */
export class LightClient {
  private readonly session: http2.ClientHttp2Session;

  constructor(address: string) {
    const url = new URL(`http://${address}`);
    this.session = http2.connect(url, {
      // Nagle's algorithm would hold a request's DATA frame until its HEADERS are acknowledged.
      createConnection: () =>
        net.connect({ host: url.hostname, port: Number(url.port), noDelay: true }),
    });
    this.session.on('error', () => undefined);
  }

  checkLimit(request: CheckLimitRequest): Promise<CheckLimitResponse> {
    const body = CheckLimitRequest.encode(request).finish();
    const frame = Buffer.allocUnsafe(5 + body.length);
    frame.writeUInt8(0, 0);
    frame.writeUInt32BE(body.length, 1);
    frame.set(body, 5);
    return new Promise((resolve, reject) => {
      const stream = this.session.request({
        ':method': 'POST',
        ':path': '/quota.v1.QuotaService/CheckLimit',
        'content-type': 'application/grpc',
        te: 'trailers',
      });
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('trailers', (trailers) => {
        const status = Number(trailers['grpc-status'] ?? 0);
        if (status !== 0) {
          reject(new Error(`grpc status ${status}: ${String(trailers['grpc-message'] ?? '')}`));
          return;
        }
        const data = Buffer.concat(chunks);
        resolve(CheckLimitResponse.decode(data.subarray(5, 5 + data.readUInt32BE(1))));
      });
      stream.on('error', reject);
      stream.end(frame);
    });
  }

  close(): void {
    this.session.close();
  }
}
