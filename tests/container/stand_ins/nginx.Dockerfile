# Stand-in for the official nginx:1.27-bookworm image (no registry here): Debian's nginx, with the `nginx` user the
# official image's workers run as, started in the foreground.
ARG BASE
FROM ${BASE}
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install --yes --no-install-recommends nginx \
    && apt-get clean && rm -rf /var/lib/apt/lists/* \
    && useradd --system --no-create-home --shell /usr/sbin/nologin nginx
CMD ["nginx", "-g", "daemon off;"]
