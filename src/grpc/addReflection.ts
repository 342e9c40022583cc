import { readFileSync } from 'node:fs';
import path from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema, FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import { projectRoot } from '../projectRoot.js';

/**
 * The FileDescriptorSet `npm run generate` writes with `buf build --as-file-descriptor-set`:
 * proto/quota/v1, grpc.health.v1 (third_party/) and every import (the google/protobuf
 * well-known types), each file under its real name and listing its dependencies.
 */
export function descriptorSetPath(): string {
  return path.join(projectRoot(), 'clients', 'typescript', 'src', 'gen', 'descriptors.binpb');
}

/**
 * Server reflection, v1 and v1alpha (grpcurl 1.8 speaks only v1alpha), answering from the
 * complete file descriptors of the descriptor set: every service in it is listed (QuotaService,
 * AdminService, grpc.health.v1.Health), and each file's dependencies are served by file name.
 *
 * @grpc/reflection reads the `fileDescriptorProtos` of the package definition it is given.
 * proto-loader fills them from protobufjs, which merges the files of a package into one and
 * drops every `dependency` (strict clients then fail on `google.protobuf.Duration`): whether
 * the definition came from .proto files or from this very descriptor set. So the definition
 * is loaded from the set and carries the set's own files, as buf wrote them.
 */
export function addReflection(server: grpc.Server): void {
  const set = readFileSync(descriptorSetPath());
  const files = fromBinary(FileDescriptorSetSchema, set).file.map((file) =>
    Buffer.from(toBinary(FileDescriptorProtoSchema, file)),
  );
  const definition = protoLoader.loadFileDescriptorSetFromBuffer(set);
  for (const def of Object.values(definition)) {
    if (isTypeDefinition(def)) def.fileDescriptorProtos = files;
  }
  new ReflectionService(definition).addToServer(server);
}

/** A message or enum definition: the ones that carry `fileDescriptorProtos`. */
function isTypeDefinition(
  def: protoLoader.AnyDefinition,
): def is protoLoader.MessageTypeDefinition<object, object> | protoLoader.EnumTypeDefinition {
  return typeof def['format'] === 'string';
}
