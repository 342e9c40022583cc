#!/usr/bin/env bash
# Fails when clients/typescript/src/gen differs from what `npm run generate` makes of proto/.
set -euo pipefail
cd "$(dirname "$0")/.."
npx buf lint
npm run --silent generate
if [ -n "$(git status --porcelain -- clients/typescript/src/gen)" ]; then
  echo "generated code is stale: run 'npm run generate' and commit clients/typescript/src/gen" >&2
  git status --short -- clients/typescript/src/gen >&2
  exit 1
fi
echo "generated code is up to date"
