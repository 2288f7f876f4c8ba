# Stand-in for the official redis:7-bookworm image (no registry here): Debian's Redis, redis-cli on the PATH.
ARG BASE
FROM ${BASE}
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install --yes --no-install-recommends redis-server \
    && apt-get clean && rm -rf /var/lib/apt/lists/*
USER redis
CMD ["redis-server"]
