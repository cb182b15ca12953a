#!/bin/sh
# Load the bundled image into the camera's Docker (from the Docker Compose ACAP).
cd -P -- "$(dirname -- "$0")" || exit 1
docker load --input focusguard-image.tar && rm -f focusguard-image.tar
