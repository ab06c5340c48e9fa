# syntax=docker/dockerfile:1
# edgeserve image: build a venv from the pinned runtime lock + the project wheel, then copy
# only that venv and the demo models into a clean slim image that runs as a non-root user.
#
#   docker build -t edgeserve:0.1.0 .
#   docker run --rm -p 8080:8080 edgeserve:0.1.0
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first so code edits do not invalidate this layer; the lock is complete, so
# --no-deps keeps pip from resolving anything that is not pinned there.
COPY requirements.lock ./
RUN pip install --no-cache-dir --no-deps -r requirements.lock
COPY pyproject.toml README.md ./
COPY edgeserve ./edgeserve
# Build with the setuptools pinned in the lock (no build isolation: nothing unpinned fetched).
RUN pip install --no-cache-dir --no-deps --no-build-isolation . \
    && edgeserve --help > /dev/null

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="edgeserve" \
      org.opencontainers.image.description="ONNX image-classification server with A/B, shadow and canary rollouts" \
      org.opencontainers.image.version="0.1.0"
RUN groupadd --system --gid 10001 edgeserve \
    && useradd --system --uid 10001 --gid edgeserve --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin edgeserve
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 \
    PORT=8080 \
    MODEL_VA_PATH=/app/models/vA.onnx \
    MODEL_VB_PATH=/app/models/vB.onnx \
    MODEL_DIR=/app/models \
    PROMETHEUS_MULTIPROC_DIR=/tmp/edgeserve-metrics
WORKDIR /app
COPY --from=builder /opt/venv /opt/venv
# Models stay root-owned and read-only for the server user.
COPY models/ /app/models/
# The metrics scratch dir must exist and be writable when /tmp is not a mounted volume.
RUN install -d -o edgeserve -g edgeserve -m 0750 /tmp/edgeserve-metrics
USER 10001:10001
EXPOSE 8080
# python, not curl: the slim image has no curl. Any non-2xx or connection error exits 1.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8080'), timeout=2)"]
ENTRYPOINT ["edgeserve"]
CMD ["serve"]
