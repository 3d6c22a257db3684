#!/usr/bin/env bash
# Builds the operator's image, localhost/modelpilot:<version in pyproject.toml>, with buildah, and
# prints its size (`make image`). BASE=<image> builds on that image; without it, on
# python:3.11-slim-bookworm when it is here or a registry serves it, else on a local base: Debian
# bookworm's Python in a minimal root filesystem made with mmdebstrap (once; remove the image
# localhost/modelpilot-base:bookworm to make it anew). Arguments go on to `buildah bud`.
set -euo pipefail
cd "$(dirname "$0")/.."

REGISTRY_BASE=docker.io/library/python:3.11-slim-bookworm
LOCAL_BASE=localhost/modelpilot-base:bookworm
# Python, venv's pip for the build stage, and libstdc++, which manylinux wheels (numpy, scipy)
# expect of the system.
LOCAL_BASE_PACKAGES=python3-minimal,python3-venv,libstdc++6

install_missing() {  # COMMAND=PACKAGE...: installs the Debian packages whose command is missing
    local pair missing=()
    for pair in "$@"; do
        command -v "${pair%%=*}" >/dev/null || missing+=("${pair#*=}")
    done
    if ((${#missing[@]})); then
        echo "installing ${missing[*]}" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

has_image() { buildah inspect --type image "$1" >/dev/null 2>&1; }

workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT

build_local_base() {
    install_missing mmdebstrap=mmdebstrap
    echo "no registry serves $REGISTRY_BASE: making $LOCAL_BASE from Debian's packages" >&2
    mmdebstrap --quiet --variant=essential --include="$LOCAL_BASE_PACKAGES" \
        --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
        --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        bookworm "$workdir/rootfs.tar" http://deb.debian.org/debian </dev/null
    local container
    container=$(buildah from scratch)
    buildah add --quiet "$container" "$workdir/rootfs.tar" / >/dev/null
    buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$container"
    buildah commit --quiet --rm "$container" "$LOCAL_BASE" >/dev/null
}

install_missing buildah=buildah

if [[ -z ${BASE:-} ]]; then
    if has_image "$REGISTRY_BASE"; then
        BASE=$REGISTRY_BASE
    elif has_image "$LOCAL_BASE"; then
        BASE=$LOCAL_BASE
    elif timeout 120 buildah pull --quiet "$REGISTRY_BASE" >/dev/null 2>&1; then
        BASE=$REGISTRY_BASE
    else
        build_local_base
        BASE=$LOCAL_BASE
    fi
fi

read -r version source < <(python3 -c 'import tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
print(project["version"], project.get("urls", {}).get("Source", ""))')
image=localhost/modelpilot:$version

# pip in the build trusts the CA bundle the machine's pip is told to trust.
cert=()
if [[ -n ${PIP_CERT:-} ]]; then
    cert=(--volume "$PIP_CERT:$PIP_CERT:ro" --build-arg "PIP_CERT=$PIP_CERT")
fi

started=$SECONDS
buildah bud --layers --isolation chroot --file Containerfile --tag "$image" \
    --build-arg "BASE=$BASE" --build-arg "VERSION=$version" --build-arg "SOURCE=$source" "${cert[@]}" "$@" .
echo "$image: $(buildah images --format '{{.Size}}' "$image"), built in $((SECONDS - started)) s on $BASE"
