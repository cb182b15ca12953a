#!/bin/sh
# Build the focusguard container ACAP for an AXIS OS 11 camera with container support.
#   sh acap/build.sh aarch64     # ARTPEC-8 / CV25 cameras
#   sh acap/build.sh armv7hf     # ARTPEC-7 cameras (e.g. Q1615 Mk III), AXIS OS <= 11.11
# Needs Docker with buildx and QEMU binfmt for the target platform on the build host; the
# .eap ends up in acap/build/<arch>/. Install it with the camera's web UI (Apps) or
#   curl --anyauth -u USER:PASS -F file=@FILE.eap http://CAMERA/axis-cgi/applications/upload.cgi
set -eu
arch=${1:-aarch64}
case "$arch" in
  aarch64) platform=linux/arm64 ;;
  armv7hf) platform=linux/arm/v7 ;;
  *) echo "usage: $0 aarch64|armv7hf" >&2; exit 2 ;;
esac
repo=$(cd "$(dirname "$0")/.." && pwd)
out="$repo/acap/build/$arch"
image=focusguard-acap:latest

rm -rf "$out"
mkdir -p "$out"
docker buildx build --platform "$platform" --build-arg ARCH="$arch" \
  ${PIP_EXTRA_INDEX_URL:+--build-arg PIP_EXTRA_INDEX_URL="$PIP_EXTRA_INDEX_URL"} \
  --file "$repo/acap/Dockerfile" --tag "$image" --load "$repo"
docker save --output "$out/focusguard-image.tar" "$image"
cp "$repo/acap/manifest.json" "$repo/acap/docker-compose.yml" "$repo/acap/focusguard" \
   "$repo/acap/postinstall.sh" "$repo/acap/preuninstall.sh" "$repo/acap/Makefile" "$repo/acap/LICENSE" "$out/"
docker build --build-arg ARCH="$arch" --file "$repo/acap/Dockerfile.acap" --tag "focusguard-eap:$arch" "$out"
container=$(docker create "focusguard-eap:$arch")
docker cp "$container:/opt/app/." "$out/eap"
docker rm "$container" >/dev/null
ls "$out"/eap/*.eap
