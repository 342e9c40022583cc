#!/usr/bin/env bash
# Fails when clients/typescript/src/gen differs from what `npm run generate` makes of proto/ and
# third_party/: the ts-proto code and descriptors.binpb, the FileDescriptorSet server reflection
# serves (src/grpc/addReflection.ts). Untracked files there count as stale too.
set -euo pipefail
cd "$(dirname "$0")/.."
npx buf lint
npm run --silent generate
if [ -n "$(git status --porcelain -- clients/typescript/src/gen)" ]; then
  echo "generated code or descriptor set is stale: run 'npm run generate' and commit clients/typescript/src/gen" >&2
  git status --short -- clients/typescript/src/gen >&2
  exit 1
fi
echo "generated code and descriptor set are up to date"
