# HUSAI artifact image: one Dockerfile, a CPU and a CUDA variant (README: "Artifact review with Docker").
#   CPU : docker build -t husai:cpu .
#   CUDA: docker build -t husai:cuda --build-arg TORCH_VARIANT=cuda .
# Needs BuildKit (Docker's default builder since 23.0) or buildah, for RUN --mount.
# Optional build inputs, never stored in the image:
#   wheelhouse/         a local torch CPU wheel (bind-mounted; saves the download)
#   --secret id=cacert  a CA bundle for HTTPS behind an intercepting proxy (pip's PIP_CERT)

# Any Debian/Ubuntu image with apt; Python 3.11 and git are installed if it lacks them.
# The CUDA variant needs no CUDA in the base: PyPI's torch wheel brings the CUDA 13.0
# runtime as pinned wheels, and `docker run --gpus all` brings the driver.
ARG BASE_IMAGE=python:3.11-slim-bookworm

# The build context (filtered by .dockerignore) minus the wheelhouse, which is only an
# install source: this stage is thrown away, so no wheel ends up in an image layer.
FROM ${BASE_IMAGE} AS source
COPY . /src
RUN rm -rf /src/wheelhouse

FROM ${BASE_IMAGE}

# cpu: torch 2.13.0+cpu (wheelhouse/ if it holds it, else TORCH_INDEX_URL); cuda: torch from PyPI.
ARG TORCH_VARIANT=cpu
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
# Optional-dependency groups of pyproject.toml to install as well (e.g. "dev" for the test suite).
ARG EXTRAS=""
# Must match params.yaml runtime.threads: bit-identical reruns need the same thread count.
ARG THREADS=2
# Provenance: the host commit the build context came from (goes into the image's one commit).
ARG GIT_COMMIT=unknown
# Fixed date for the image's git commit, so the same tree gives the same commit hash.
ARG SOURCE_DATE_EPOCH=946684800
ARG USER_UID=1000

LABEL org.opencontainers.image.title="HUSAI" \
      org.opencontainers.image.description="Hunting for Stable AI Features: dvc repro in a pinned environment" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.revision="${GIT_COMMIT}"

# Runtime defaults: threads and determinism (the stages also call
# torch.use_deterministic_algorithms(True) and set these threads from params). USER and
# LOGNAME let dvc (getpass.getuser) run under a uid that /etc/passwd does not know.
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:${PATH} \
    HOME=/home/husai \
    USER=husai \
    LOGNAME=husai \
    OMP_NUM_THREADS=${THREADS} \
    MKL_NUM_THREADS=${THREADS} \
    PYTHONHASHSEED=0 \
    CUBLAS_WORKSPACE_CONFIG=:4096:8 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DVC_NO_ANALYTICS=1 \
    HUSAI_DEVICE=${TORCH_VARIANT} \
    HUSAI_OUT=/out \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility

# (after ENV: hadolint 2.15 lints RUN as POSIX sh again after an ENV that follows SHELL)
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# System packages, only those the base lacks (versions follow the base image's distribution);
# git settings that let any uid use the repository and commit (dvc exp run); the user.
# hadolint ignore=DL3008,SC2086
RUN missing=""; \
    command -v git >/dev/null || missing="git"; \
    python3.11 -c 'import ensurepip, venv' 2>/dev/null || missing="$missing python3.11 python3.11-venv"; \
    if [ -n "$missing" ]; then \
        apt-get update \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates $missing \
        && rm -rf /var/lib/apt/lists/*; \
    fi; \
    git config --system --add safe.directory '*'; \
    git config --system user.name HUSAI; \
    git config --system user.email husai@localhost; \
    taken=$(getent passwd "${USER_UID}" | cut -d: -f1); \
    if [ -n "$taken" ]; then userdel "$taken"; fi; \
    useradd --no-log-init --create-home --uid "${USER_UID}" --shell /bin/bash husai

# Python environment: torch first (so nothing can pull another build of it), then the
# project's runtime dependencies, every version pinned by constraints.txt (and pip,
# setuptools and the CUDA wheels by scripts/constraints-image.txt: hence DL3013 is off).
COPY pyproject.toml constraints.txt scripts/constraints-image.txt /tmp/pins/
# hadolint ignore=DL3013
RUN --mount=type=bind,source=wheelhouse,target=/tmp/wheelhouse \
    --mount=type=secret,id=cacert \
    if [ -s /run/secrets/cacert ]; then export PIP_CERT=/run/secrets/cacert; fi; \
    set -eux; \
    python3.11 -m venv "${VIRTUAL_ENV}"; \
    pins=(-c /tmp/pins/constraints.txt -c /tmp/pins/constraints-image.txt); \
    pip install --no-cache-dir -c /tmp/pins/constraints-image.txt pip setuptools; \
    torch_version=$(sed -n 's/^torch==//p' /tmp/pins/constraints.txt); \
    case "${TORCH_VARIANT}" in \
      cpu) \
        if compgen -G "/tmp/wheelhouse/torch-${torch_version}+cpu-*.whl" >/dev/null; then \
            pip install --no-cache-dir --no-index --find-links /tmp/wheelhouse --no-deps "torch==${torch_version}+cpu"; \
        else \
            pip install --no-cache-dir --index-url "${TORCH_INDEX_URL}" --no-deps "torch==${torch_version}+cpu"; \
        fi ;; \
      cuda) pip install --no-cache-dir "${pins[@]}" "torch==${torch_version}" ;; \
      *) echo "TORCH_VARIANT must be cpu or cuda, not ${TORCH_VARIANT}" >&2; exit 2 ;; \
    esac; \
    python3.11 -c 'import sys, tomllib; p = tomllib.load(open("/tmp/pins/pyproject.toml", "rb"))["project"]; \
        print("\n".join(p["dependencies"] + [d for e in sys.argv[1].split(",") if e for d in p["optional-dependencies"][e]]))' \
        "${EXTRAS}" > /tmp/pins/requirements.txt; \
    pip install --no-cache-dir "${pins[@]}" -r /tmp/pins/requirements.txt; \
    pip check; \
    python -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'; \
    rm -rf /tmp/pins

# The repository, as a git repository with one commit (dvc needs git). The host's .git is
# not copied (.dockerignore): a fresh commit with a fixed author and date depends only on
# the files, so rebuilding the same tree gives the same commit hash. The tree is writable
# by any user, so `docker run --user "$(id -u):$(id -g)"` works too.
WORKDIR /home/husai/husai
COPY --from=source --chown=husai:husai /src .
RUN set -eux; \
    pip install --no-cache-dir --no-deps --no-build-isolation -e .; \
    git init -q -b main; \
    git add -A; \
    GIT_AUTHOR_NAME=HUSAI GIT_AUTHOR_EMAIL=husai@localhost GIT_AUTHOR_DATE="@${SOURCE_DATE_EPOCH} +0000" \
    GIT_COMMITTER_NAME=HUSAI GIT_COMMITTER_EMAIL=husai@localhost GIT_COMMITTER_DATE="@${SOURCE_DATE_EPOCH} +0000" \
        git commit -q -m "HUSAI source at ${GIT_COMMIT}"; \
    chown -R husai:husai /home/husai; \
    chmod -R a+rwX /home/husai

USER ${USER_UID}

# Reproduce every stage (dvc repro --force), print the metrics, copy results to /out if mounted.
CMD ["/home/husai/husai/scripts/container-run"]
