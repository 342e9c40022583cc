# quota-authority: the service against an external PostgreSQL (DATABASE_URL).
FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY proto ./proto
COPY migrations ./migrations
COPY src ./src
COPY bench ./bench
COPY clients ./clients
RUN npm ci --no-audit --no-fund && npm prune --omit=dev
ENV QUOTA_HOST=0.0.0.0 QUOTA_PORT=50051
EXPOSE 50051 9464
USER node
ENTRYPOINT ["node", "--max-semi-space-size=16", "--no-allocation-site-pretenuring", "dist/src/main.js"]
CMD ["serve"]
