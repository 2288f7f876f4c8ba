# Stand-in for the official postgres:15-bookworm image (no registry here): Debian's PostgreSQL 15 with the same
# contract the compose file relies on: POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB initialise an empty data
# directory at /var/lib/postgresql/data; the command is `postgres [options]`; pg_isready on the PATH.
ARG BASE
FROM ${BASE}
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install --yes --no-install-recommends postgresql-15 \
    && apt-get clean && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /var/lib/postgresql/data && chown postgres:postgres /var/lib/postgresql/data \
    && chmod 700 /var/lib/postgresql/data
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data
COPY postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint.sh
USER postgres
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint.sh"]
CMD ["postgres"]
