# xi-gateway container image.
#   docker build -t xi-gateway .
#   docker run -p 8080:8080 -e ELEVENLABS_API_KEY=... xi-gateway
# Settings: the image's /etc/xi-gateway/proxy.conf, overridden by environment variables.

# Build: the Swift toolchain on Debian 12, with libcurl's and hiredis's headers.
FROM swift:6.2-bookworm AS build
RUN export DEBIAN_FRONTEND=noninteractive \
    && apt-get update \
    && apt-get install -y --no-install-recommends libcurl4-openssl-dev libhiredis-dev zlib1g-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Package.swift ./
COPY Sources ./Sources
COPY Tests ./Tests
# The Swift runtime is linked in, so the runtime image needs no toolchain.
RUN swift build -c release --static-swift-stdlib --product xi-gateway \
    && install -D -m 0755 "$(swift build -c release --show-bin-path)/xi-gateway" /out/xi-gateway \
    && strip /out/xi-gateway

# Run: Debian 12 slim with libcurl, hiredis and CA certificates, as an unprivileged user.
FROM debian:bookworm-slim
RUN export DEBIAN_FRONTEND=noninteractive \
    && apt-get update \
    && apt-get install -y --no-install-recommends libcurl4 libhiredis0.14 ca-certificates tzdata \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 xi \
    && useradd --system --uid 10001 --gid xi --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin xi
COPY --from=build /out/xi-gateway /usr/local/bin/xi-gateway
COPY proxy.conf /etc/xi-gateway/proxy.conf
# In a container the gateway must listen on every interface to be reachable. The admin listener (metrics,
# statistics, purges) too, for Prometheus and probes inside the cluster: never publish port 9091 beyond it.
ENV LISTEN_HOST=0.0.0.0 \
    LISTEN_PORT=8080 \
    ADMIN_LISTEN=0.0.0.0:9091
USER 10001:10001
EXPOSE 8080 9091
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/xi-gateway", "--config", "/etc/xi-gateway/proxy.conf"]
