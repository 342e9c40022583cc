import { readFileSync } from 'node:fs';
import type { ServiceDefinition } from '@grpc/grpc-js';
import { createFileRegistry, fromBinary, type DescMessage } from '@bufbuild/protobuf';
import { BinaryReader } from '@bufbuild/protobuf/wire';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import { ValidationError } from '../errors.js';
import { descriptorSetPath } from './addReflection.js';
import { locateDecodeFault, strictUtf8 } from './locateDecodeFault.js';
import { decodeItemwise, type ItemwiseRequest } from './decodeItemwise.js';
import { CheckLimitRequest } from '../../clients/typescript/src/gen/quota/v1/quota_service.js';

/**
 * What a request body that does not decode is delivered as, in place of the request. grpc-js
 * answers INTERNAL when a deserializer throws, and before any middleware runs; this marker
 * instead reaches the call adapters, which throw its error where the handler would run, inside
 * the middleware chain: the caller is authenticated first, and the answer is INVALID_ARGUMENT.
 */
export class MalformedRequest {
  constructor(readonly error: ValidationError) {}
}

/**
 * Batch requests whose items are each decided on their own: an item that does not decode is
 * that item's error (a MalformedRequest in its place in the list), not the whole call's.
 */
const ITEMWISE: ReadonlyMap<string, Omit<ItemwiseRequest, 'item'>> = new Map([
  [
    '/quota.v1.QuotaService/CheckLimits',
    {
      fieldNumber: 1,
      property: 'checks',
      decode: (reader: BinaryReader) => CheckLimitRequest.decode(reader),
    },
  ],
]);

/** The decoded request, or the ValidationError of a body that did not decode (thrown). */
export function decodedRequest<Req>(request: Req): Req {
  if ((request as unknown) instanceof MalformedRequest)
    throw (request as unknown as MalformedRequest).error;
  return request;
}

/** An item of an item-wise request (ITEMWISE): itself, or the error of one that did not decode. */
export function decodedItem<Item>(item: Item): Item | ValidationError {
  return (item as unknown) instanceof MalformedRequest
    ? (item as unknown as MalformedRequest).error
    : item;
}

/**
 * `service` with every method's request deserializer made total and strict:
 * - strings are decoded strictly: invalid UTF-8 fails the decode instead of silently becoming
 *   U+FFFD (which would store other text than the caller sent);
 * - a body that does not decode (cut short, garbage, an int64 the generated code cannot hold as
 *   a number, invalid UTF-8) becomes a MalformedRequest whose ValidationError names the field
 *   where one can be found (locateDecodeFault, from the service's descriptors), else "request".
 */
export function guardDeserialization<S extends ServiceDefinition>(service: S): S {
  const guarded: Record<string, ServiceDefinition[string]> = {};
  for (const [name, method] of Object.entries(service)) {
    const input = requestSchema(method.path);
    const decode = method.requestDeserialize;
    const itemwise = itemwiseSpec(method.path, input);
    guarded[name] = {
      ...method,
      requestDeserialize: (body: Buffer): unknown => {
        // Item by item always, not only after the whole decode failed: one way of reading the
        // items, so that whether an item is decided never depends on another item.
        if (itemwise) {
          const items = decodeItemwise(body, itemwise, (e) => new MalformedRequest(e));
          return items ?? new MalformedRequest(malformed(body, input, undefined));
        }
        try {
          // The generated decoders take a BinaryReader as given: this one decodes strictly.
          return decode(new BinaryReader(body, strictUtf8) as unknown as Buffer);
        } catch (err) {
          return new MalformedRequest(malformed(body, input, err));
        }
      },
    };
  }
  return guarded as S;
}

function itemwiseSpec(path: string, input: DescMessage): ItemwiseRequest | undefined {
  const spec = ITEMWISE.get(path);
  if (!spec) return undefined;
  const field = input.fields.find((f) => f.number === spec.fieldNumber);
  if (field?.fieldKind !== 'list' || field.listKind !== 'message')
    throw new Error(`${path}: field ${spec.fieldNumber} is not a list of messages`);
  return { ...spec, item: field.message };
}

function malformed(body: Buffer, input: DescMessage, err: unknown): ValidationError {
  const fault = locateDecodeFault(body, input);
  if (fault) return new ValidationError(fault.field, fault.reason);
  const cause = err instanceof Error ? `: ${err.message.slice(0, 120)}` : '';
  return new ValidationError('request', `does not decode as ${input.typeName}${cause}`);
}

let registry: ReturnType<typeof createFileRegistry> | undefined;

/** The request message of "/quota.v1.QuotaService/CheckLimit", from the descriptor set. */
function requestSchema(path: string): DescMessage {
  registry ??= createFileRegistry(
    fromBinary(FileDescriptorSetSchema, readFileSync(descriptorSetPath())),
  );
  const [, serviceName = '', methodName = ''] = path.split('/');
  const method = registry.getService(serviceName)?.methods.find((m) => m.name === methodName);
  if (!method) throw new Error(`${path} is not in the descriptor set; run npm run generate`);
  return method.input;
}
