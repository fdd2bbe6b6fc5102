# flagops operator and probe image.
#   docker build -t ghcr.io/flagops/flagops:0.1.0 .
# Runs as UID 65532 with a read-only root filesystem; only /tmp (an emptyDir) is written.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
# Wheels for the package and its dependencies: the operator, relay and calendar extras.
# Only flagops: the development tools (devtools/: harness, demo) are another distribution
# and are not in the build context (.dockerignore).
RUN pip wheel --wheel-dir /wheels ".[operator,relay,calendar]"

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/tmp \
    TMPDIR=/tmp
COPY --from=build /wheels /wheels
# Byte-code is compiled here, at build time: at run time nothing may be written.
RUN pip install --no-index --find-links /wheels "flagops[operator,relay,calendar]" \
    && rm -rf /wheels \
    && python -m compileall -q /usr/local/lib/python3.11/site-packages
LABEL org.opencontainers.image.title="flagops" \
      org.opencontainers.image.description="Kubernetes operator that rolls integrations out safely behind feature flags" \
      org.opencontainers.image.licenses="Apache-2.0"
USER 65532:65532
WORKDIR /tmp
EXPOSE 8080 8081
ENTRYPOINT ["flagops"]
CMD ["run"]
