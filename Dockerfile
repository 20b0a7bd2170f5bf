# syntax=docker/dockerfile:1
# The workload-operator image: `docker build -t workload-operator:0.1.0 .`
#
# Base image pinned by exact tag. To pin it by digest as well (recommended for releases), read
# the digest with `docker buildx imagetools inspect python:3.11.14-slim-bookworm` (or
# `crane digest ...`) and write it as  FROM python:3.11.14-slim-bookworm@sha256:<digest>
# in both stages.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# --- builder: the operator's wheel and the wheels of its dependencies -------------------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator/ operator/
RUN pip wheel --wheel-dir /wheels .

# --- final: a virtualenv with the operator, no build tools, non-root ---------------------------
FROM ${PYTHON_IMAGE}
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# The wheels are bind-mounted from the builder, never copied: no layer keeps them. Only the
# wheels built there are installed (--no-index), then the venv's pip goes: nothing installs later.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    python -m venv /opt/workload-operator \
 && /opt/workload-operator/bin/pip install --no-index --find-links /wheels workload-operator \
 && /opt/workload-operator/bin/pip uninstall --yes pip
ENV PATH=/opt/workload-operator/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# 65532: the conventional "nonroot" uid; the Deployment runs as it with a read-only root filesystem.
USER 65532:65532
WORKDIR /tmp
EXPOSE 8080 9090
ENTRYPOINT ["workload-operator"]
CMD ["run"]
