#!/bin/sh
# image.sh TAG [VERSION]: builds the seshatd container image TAG (make
# image). seshatd is built on the host, static (CGO_ENABLED=0), into a
# fresh build context with this directory's Dockerfile and an empty data
# directory, so the image is FROM scratch and needs no registry.
set -eu
tag=${1:?usage: image.sh TAG [VERSION]}
version=${2:-dev}
here=$(cd "$(dirname "$0")" && pwd)
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
CGO_ENABLED=0 ${GO:-go} build -C "$here/../.." -ldflags "-s -w -X main.version=$version" -o "$ctx/seshatd" ./cmd/seshatd
mkdir "$ctx/data"
cp "$here/Dockerfile" "$ctx/Dockerfile"
# --force-rm: no intermediate container is left behind, even on failure.
docker build --force-rm -q -t "$tag" "$ctx" >/dev/null
echo "$tag"
