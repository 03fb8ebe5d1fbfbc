# SceneSeek app image. CPU by default; CUDA with --build-arg TORCH_VARIANT=cu128 (the torch
# wheel then bundles CUDA; run with --gpus all). Build: docker build -t sceneseek .
# Run:   docker run -p 8501:8501 -v sceneseek-ws:/workspace [-v /data:/import:ro] sceneseek
# (after adding a user: see the CMD below and docs/SECURITY.md)
FROM python:3.11-slim

ARG TORCH_VARIANT=cpu
ARG TORCH_VERSION=2.13.0
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    SCENESEEK_WORKSPACE=/workspace \
    SCENESEEK_IMPORT_DIR=/import \
    SCENESEEK_HOST=0.0.0.0 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1

RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential curl \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.txt .
# torch first from its own index (the PyPI default would pull a multi-GB CUDA build),
# then everything else pinned; annoy compiles here, then the compiler is removed.
RUN pip install "torch==${TORCH_VERSION}" --index-url "https://download.pytorch.org/whl/${TORCH_VARIANT}" \
    && pip install -r requirements.txt \
    && apt-get purge -y build-essential && apt-get autoremove -y

COPY core ./core
COPY tiles ./tiles
COPY app ./app
COPY assets ./assets
COPY .streamlit ./.streamlit

RUN useradd --create-home --uid 1000 sceneseek \
    && mkdir -p /workspace /import \
    && chown -R sceneseek /workspace /import
USER sceneseek
VOLUME ["/workspace"]
EXPOSE 8501
# Through the front, which passes /_stcore/health on to Streamlit: 200 means both answer.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD curl --fail --silent http://127.0.0.1:8501/_stcore/health || exit 1
# The front (python -m core front) listens on 8501 and starts Streamlit on a private loopback
# port; it refuses to start with no user account on a public address (serve-check); add one:
#   docker run --rm -it -v sceneseek-ws:/workspace sceneseek python -m core users add NAME --role admin
CMD ["python", "-m", "core", "front", "--port", "8501"]
