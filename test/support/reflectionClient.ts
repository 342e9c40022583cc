import path from 'node:path';
import { createRequire } from 'node:module';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/** What the tests read of a reflection answer. */
export interface ReflectionResponse {
  listServicesResponse?: { service: { name: string }[] };
  fileDescriptorResponse?: { fileDescriptorProto: Buffer[] };
  errorResponse?: { errorCode: number; errorMessage: string };
}

/**
 * A grpc-js client of the reflection service in one version, from @grpc/reflection's own proto:
 * each `ask` is one request on a stream of its own, answered by the first response.
 */
export function reflectionClient(
  address: string,
  version: 'v1' | 'v1alpha',
): { ask(request: Record<string, unknown>): Promise<ReflectionResponse>; close(): void } {
  const require = createRequire(import.meta.url);
  const reflectionDir = path.join(path.dirname(require.resolve('@grpc/reflection')), '..', 'proto');
  const def = protoLoader.loadSync(`grpc/reflection/${version}/reflection.proto`, {
    includeDirs: [reflectionDir],
  });
  const pkg = grpc.loadPackageDefinition(def) as unknown as Record<
    string,
    Record<string, Record<string, Record<string, grpc.ServiceClientConstructor>>>
  >;
  const Ctor = pkg['grpc']!['reflection']![version]!['ServerReflection']!;
  const client = new Ctor(address, grpc.credentials.createInsecure()) as unknown as {
    serverReflectionInfo(): grpc.ClientDuplexStream<unknown, ReflectionResponse>;
    close(): void;
  };
  return {
    ask: (request) =>
      new Promise((resolve, reject) => {
        const stream = client.serverReflectionInfo();
        stream.once('data', (res: ReflectionResponse) => {
          resolve(res);
          stream.end();
        });
        stream.once('error', reject);
        stream.write(request);
      }),
    close: () => client.close(),
  };
}
