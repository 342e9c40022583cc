# quota-authority: the service against an external PostgreSQL (DATABASE_URL).
# Three stages: `build` compiles with every dependency, `deps` installs only the production ones,
# and `runtime` holds those, the build and the files the server reads at run time.

FROM node:20-bookworm-slim AS build
WORKDIR /app
# The manifests first (the workspace's too), so that the install is cached until they change.
COPY package.json package-lock.json ./
COPY clients/typescript/package.json ./clients/typescript/
# --ignore-scripts: the root `prepare` script would build before the sources are copied.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY proto ./proto
COPY src ./src
COPY bench ./bench
COPY clients ./clients
RUN npm run build

FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY clients/typescript/package.json ./clients/typescript/
# `npm rebuild` runs the dependencies' own install scripts (the embedded PostgreSQL's symlinks),
# which --ignore-scripts skipped along with the root `prepare`.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm rebuild && npm cache clean --force

FROM node:20-bookworm-slim AS runtime
WORKDIR /app
ENV QUOTA_HOST=0.0.0.0 QUOTA_PORT=50051 QUOTA_METRICS_PORT=9464
COPY --from=deps /app/node_modules ./node_modules
# package.json ("type": "module") and proto/ mark the project root the server finds its files
# from (src/projectRoot.ts); migrations/ is what `migrate` applies and what health compares the
# database against; the descriptor set answers reflection and checks request bodies.
COPY package.json ./
COPY proto ./proto
COPY migrations ./migrations
COPY --from=build /app/clients/typescript/src/gen/descriptors.binpb ./clients/typescript/src/gen/
COPY --from=build /app/dist ./dist
# Writable by the server's user: the embedded PostgreSQL's data when DATABASE_URL is unset.
RUN mkdir .data && chown node:node .data
USER node
EXPOSE 50051 9464
# The gRPC health protocol (grpc.health.v1.Health/Check) on 127.0.0.1:$QUOTA_PORT, with TLS when
# QUOTA_TLS_CERT is set: healthy only while the server answers SERVING.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "dist/src/main.js", "healthcheck"]
ENTRYPOINT ["node", "--max-semi-space-size=16", "--no-allocation-site-pretenuring", "dist/src/main.js"]
CMD ["serve"]
