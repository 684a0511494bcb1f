# DeepSalt image for KubeRay (head, workers and job submitter) and for `docker run`.
#
#   CPU (default):  docker build -t deepsalt:0.1.0 .
#   GPU:            docker build -t deepsalt:0.1.0-gpu --build-arg TORCH_CHANNEL=cu128 .
#
# The CUDA build of torch brings its own CUDA runtime libraries, so the GPU image needs no
# CUDA base: the node's NVIDIA driver is all it uses (the device plugin mounts it). A CUDA
# base can still be chosen with --build-arg BASE_IMAGE=... if it provides Python 3.11.
# Ray's version comes from the package pin and must equal `rayVersion` in k8s/ (a test checks).
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

ARG TORCH_CHANNEL=cpu
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# wget: KubeRay's default health probes call it inside the Ray containers. g++: the mapping
# actors compile the forward pass (torch inductor's CPU kernels, deepsalt.compiled); without a
# compiler they map with the plain, slower forward and log a warning.
RUN apt-get update \
    && apt-get install -y --no-install-recommends wget g++ \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 1000 ray \
    && useradd --uid 1000 --gid 1000 --create-home --shell /bin/bash ray

WORKDIR /app
# torch first, from the channel that matches the hardware (CPU or a CUDA version), so that
# installing the package finds it satisfied instead of pulling the default CUDA build.
RUN pip install --index-url "https://download.pytorch.org/whl/${TORCH_CHANNEL}" torch==2.13.0

COPY pyproject.toml README.md ./
COPY deepsalt ./deepsalt
RUN pip install . && rm -rf build deepsalt.egg-info

COPY ray_jobs /app/ray_jobs
COPY configs /app/configs

USER 1000:1000
ENV HOME=/home/ray
CMD ["deepsalt", "--help"]
