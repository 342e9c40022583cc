import * as grpc from '@grpc/grpc-js';

/** A method of a generated service definition. */
export interface MethodCase {
  readonly service: grpc.ServiceDefinition;
  /** The definition's key, e.g. "checkLimit". */
  readonly key: string;
  /** "quota.v1.QuotaService/CheckLimit". */
  readonly path: string;
  readonly streaming: boolean;
}

/** Every method of `services`, from their generated definitions. */
export function methodsOf(...services: grpc.ServiceDefinition[]): MethodCase[] {
  return services.flatMap((service) =>
    Object.entries(service).map(([key, m]) => ({
      service,
      key,
      path: m.path.slice(1),
      streaming: m.responseStream,
    })),
  );
}

type AnyClient = grpc.Client & Record<string, (...args: unknown[]) => unknown>;

/**
 * Calls `method` on `address` with the request whose every field is at its default (an empty
 * body) and `authorization` set to `authorization` (none when undefined); resolves with the
 * status code (0 for OK, or for a stream's first message).
 */
export function callStatus(
  address: string,
  method: MethodCase,
  authorization: string | undefined,
): Promise<number> {
  const Ctor = grpc.makeGenericClientConstructor(method.service, 'Service');
  const client = new Ctor(address, grpc.credentials.createInsecure()) as AnyClient;
  const metadata = new grpc.Metadata();
  if (authorization !== undefined) metadata.set('authorization', authorization);
  const def = method.service[method.key]!;
  const request: unknown = def.requestDeserialize(Buffer.alloc(0));
  const deadline = Date.now() + 10_000;
  return new Promise<number>((resolve) => {
    if (method.streaming) {
      const stream = client[method.key]!(request, metadata, {
        deadline,
      }) as grpc.ClientReadableStream<unknown>;
      stream.once('data', () => {
        resolve(0);
        stream.cancel();
      });
      stream.once('error', (err: grpc.ServiceError) => resolve(err.code));
      stream.once('end', () => resolve(0));
    } else {
      client[method.key]!(request, metadata, { deadline }, (err: grpc.ServiceError | null) =>
        resolve(err ? err.code : 0),
      );
    }
  }).finally(() => client.close());
}
