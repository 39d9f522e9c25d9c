# yogaflow-migrate image: one static binary (glibc and OpenSSL linked in) and the entrypoint
# that runs it before an app, on an empty base. A backend image takes both files with
# `COPY --from` whatever its own base is (README "Deploy", docs/container.md); run alone, it migrates.
ARG RUST_VERSION=1.95.0

# The builder stage is the same, line for line, in examples/backend/Dockerfile, so a build of
# either reuses the other's cached layers.
FROM docker.io/library/rust:${RUST_VERSION}-slim-bookworm AS build
# Set to true (with the host's cargo registry mounted) to build without network access.
ARG CARGO_NET_OFFLINE=false
ENV CARGO_NET_OFFLINE=${CARGO_NET_OFFLINE}
# perl and make build the vendored OpenSSL.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends make perl \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /build
# Dependencies first, in a layer of their own: a source edit does not rebuild them.
COPY Cargo.toml Cargo.lock ./
COPY .cargo .cargo
COPY scripts/build-static.sh scripts/
RUN mkdir src \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs \
 && scripts/build-static.sh >/dev/null \
 && rm -rf src target/*/release/.fingerprint/yogaflow-migrate-*
COPY build.rs ./
COPY sql sql
COPY src src
RUN cp "$(scripts/build-static.sh)" /yogaflow-migrate

FROM scratch
COPY --from=build /yogaflow-migrate /usr/local/bin/yogaflow-migrate
COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
USER 10001:10001
ENTRYPOINT ["/usr/local/bin/yogaflow-migrate"]
CMD ["up"]
