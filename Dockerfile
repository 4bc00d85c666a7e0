# syntax=docker/dockerfile:1
# Locus: imaging pointer registry over FHIR R4.
#   docker build -t locus .
#   docker run -p 8080:8080 -e DATABASE_URL=postgres://... -e LOCUS_KEY_ENCRYPTION_KEY=<32 bytes, base64> -e LOCUS_TRUSTED_ISSUERS='[...]' locus
# Without DATABASE_URL the embedded PGlite keeps its data in /app/data (mount a volume there).

# ---- build: compile TypeScript with the dev dependencies ------------------------------------
FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# ---- runtime: production dependencies and the compiled output only --------------------------
FROM node:20-slim AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    LOCUS_DATA_DIR=/app/data
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY bin ./bin
COPY fhir-profiles ./fhir-profiles
# No src/ and no tsx here: bin/locus.js runs dist/src/cli.js.
RUN mkdir -p /app/data && chown node:node /app/data
USER node
EXPOSE 8080
VOLUME ["/app/data"]
# slim has no curl: node itself asks /healthz (the port follows PORT).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "require('http').get({host:'127.0.0.1',port:process.env.PORT||8080,path:'/healthz',timeout:4000},r=>process.exit(r.statusCode===200?0:1)).on('error',()=>process.exit(1)).on('timeout',()=>process.exit(1))"]
CMD ["node", "bin/locus.js", "serve"]
