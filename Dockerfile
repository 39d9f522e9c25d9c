# yogaflow-migrate image: the migrator and the entrypoint that runs it before the app.
# The YogaFlow backend's image takes both files from here (README "Container").
ARG RUST_VERSION=1.95.0

FROM docker.io/library/rust:${RUST_VERSION}-slim-bookworm AS builder
# Set to true (with the host's cargo registry mounted) to build without network access.
ARG CARGO_NET_OFFLINE=false
ENV CARGO_NET_OFFLINE=${CARGO_NET_OFFLINE}
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends pkg-config libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /build
# Dependencies first, in a layer of their own: a source edit does not rebuild them.
COPY Cargo.toml Cargo.lock ./
COPY .cargo .cargo
RUN mkdir src \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs \
 && cargo build --release --locked \
 && rm -rf src target/release/.fingerprint/yogaflow-migrate-*
COPY build.rs ./
COPY sql sql
COPY src src
RUN cargo build --release --locked

FROM docker.io/library/debian:bookworm-slim
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates libssl3 \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
 && echo 'yogaflow:x:10001:10001:yogaflow:/app:/usr/sbin/nologin' >> /etc/passwd \
 && echo 'yogaflow:x:10001:' >> /etc/group \
 && mkdir -p /app /data \
 && chown 10001:10001 /app /data
COPY --from=builder /build/target/release/yogaflow-migrate /usr/local/bin/yogaflow-migrate
COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
USER 10001:10001
WORKDIR /app
ENTRYPOINT ["docker-entrypoint.sh"]
