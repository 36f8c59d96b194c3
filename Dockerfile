# One image for every keyward service; the service is chosen by argument:
#   docker run keyward dist/apps/validator/main.js
#   docker run keyward dist/scripts/migrate.js
# Pin the base by digest in CI (node:24-bookworm-slim@sha256:…) for reproducible builds.
# No BuildKit-only syntax (cache mounts, a `# syntax=` frontend): it builds with the classic
# builder, Podman and Buildah too, and needs no frontend image from a registry (ADR 0025).
# Without registry access, deploy/images/offline-base.sh builds the base under the same name.
ARG NODE_IMAGE=node:24-bookworm-slim

# --- build: all dependencies, compile once -------------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build && test -f dist/apps/intake/main.js && test -f dist/apps/gateway/main.js && test -f dist/scripts/migrate.js

# --- production dependencies only, without install scripts (none of them needs one) --------
FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# --- runtime ---------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
# Code and dependencies stay owned by root: the service user can read them, never change them.
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/deploy/iam ./deploy/iam
COPY package.json ./
# Built for a read-only root file system: nothing is written outside /tmp (mount an emptyDir
# or tmpfs there). npm is not used at run time, so no ~/.npm cache is needed.
# The `node` user of the official image, by number so Kubernetes can verify runAsNonRoot.
USER 1000:1000
EXPOSE 3000 3001 3002 3003 3004 4010
# Node is PID 1 and each service handles SIGTERM itself (libs/bootstrap): report not ready, stop
# consuming, finish in-flight messages, close connections, exit 0 within 25 s.
STOPSIGNAL SIGTERM
# No curl in the slim image: node asks /health/live. The port is PORT, else the default port of
# the service named on the command line (docker-init, if used, keeps it in /proc/1/cmdline).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "const d={intake:3000,validator:3001,rotation:3002,monitor:3003,gateway:3004,'pleo-sandbox':4010};let s='';try{s=(require('fs').readFileSync('/proc/1/cmdline','utf8').match(/apps\\/([a-z-]+)\\/main/)||[])[1]}catch{}const p=process.env.PORT||d[s]||3000;fetch('http://127.0.0.1:'+p+'/health/live',{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node"]
CMD ["dist/apps/intake/main.js"]
