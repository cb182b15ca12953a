# syntax=docker/dockerfile:1
# focusguard daemon image, multi-arch (linux/amd64, linux/arm64):
#   docker buildx build --platform linux/amd64,linux/arm64 -t ghcr.io/example/focusguard:0.1.0 --push .
# Edge TPU variant (adds libedgetpu1-std from Coral's apt repository):
#   docker buildx build --platform linux/amd64,linux/arm64 --build-arg EDGETPU=1 \
#     -t ghcr.io/example/focusguard:0.1.0-edgetpu --push .
# The Edge TPU pod then needs the device: the USB Accelerator (/dev/bus/usb) or the PCIe / M.2
# module (/dev/apex_0), and the Edge TPU-compiled model <stem>_edgetpu.tflite beside the model;
# see deploy/kubernetes/README.md. (acap/Dockerfile is the Axis camera app, unrelated.)

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# Build stage: the wheel is pure Python (py3-none-any), so it is built once on the build
# platform instead of under emulation for each target platform.
FROM --platform=$BUILDPLATFORM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY . .
RUN pip wheel --no-deps -w /wheels .

# Runtime stage.
FROM ${PYTHON_IMAGE}
ARG EDGETPU=0
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# opencv-python-headless, av and ai-edge-litert bundle their native libraries: no system
# packages are needed for the CPU image (no libGL, no libglib).
RUN set -eux; \
    if [ "$EDGETPU" = "1" ]; then \
        export DEBIAN_FRONTEND=noninteractive; \
        apt-get update; \
        apt-get install -y --no-install-recommends ca-certificates curl gnupg; \
        curl -fsSL https://packages.cloud.google.com/apt/doc/apt-key.gpg \
            | gpg --dearmor -o /usr/share/keyrings/coral-edgetpu.gpg; \
        echo "deb [signed-by=/usr/share/keyrings/coral-edgetpu.gpg] https://packages.cloud.google.com/apt coral-edgetpu-stable main" \
            > /etc/apt/sources.list.d/coral-edgetpu.list; \
        apt-get update; \
        apt-get install -y --no-install-recommends libedgetpu1-std; \
        apt-get purge -y --auto-remove curl gnupg; \
        rm -rf /var/lib/apt/lists/*; \
    fi

COPY --from=build /wheels /wheels
# prometheus-client: the `metrics` extra (focusguard[metrics]), for metrics.prometheus_port.
RUN pip install /wheels/*.whl "prometheus-client>=0.17" && rm -rf /wheels

RUN groupadd --system --gid 10001 focusguard \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/focusguard --no-create-home \
        --shell /usr/sbin/nologin focusguard \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/focusguard \
    && install -d -m 0755 /etc/focusguard

USER 10001:10001
WORKDIR /var/lib/focusguard
# health (/healthz, /readyz) and Prometheus (/metrics), as set in the config's health and metrics sections
EXPOSE 8089 9108
ENTRYPOINT ["focusguard"]
CMD ["run", "--config", "/etc/focusguard/focusguard.yaml"]
