#!/bin/sh
# Remove the container, its state volume and the image.
cd -P -- "$(dirname -- "$0")" || exit 1
docker compose down --volumes
docker image rm focusguard-acap:latest
