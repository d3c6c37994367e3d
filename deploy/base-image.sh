#!/usr/bin/env bash
# Make the image's base from Debian packages alone, for a machine that reaches Debian's
# archive but no container registry (docker.io, ghcr.io): a minimal bookworm root with
# Python 3.11, imported as localhost/enigma-base. Where a registry is reachable, skip
# this and build FROM python:3.11-slim-bookworm (the Dockerfile's default).
#
#   deploy/base-image.sh [TAG]          # TAG defaults to localhost/enigma-base
#   podman build --build-arg BASE=localhost/enigma-base -t enigma .
#
# Needs root, debootstrap and podman (apt-get install debootstrap podman).
# MIRROR (default: the first URI of this machine's apt sources, else deb.debian.org)
# and SUITE (default bookworm) may be set in the environment.
set -euo pipefail
tag="${1:-localhost/enigma-base}"
suite="${SUITE:-bookworm}"
if [[ -z "${MIRROR:-}" ]]; then
    MIRROR="$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/debian.sources \
              2>/dev/null | grep -v security | head -1)"
    MIRROR="${MIRROR:-http://deb.debian.org/debian}"
fi
for tool in debootstrap podman; do
    command -v "$tool" >/dev/null || { echo "base-image: $tool is missing; apt-get install $tool" >&2; exit 2; }
done
root="$(mktemp -d /var/tmp/enigma-base.XXXXXX)"
trap 'rm -rf --one-file-system "$root"' EXIT
# python3-venv: the image installs Enigma into its own venv (/opt/enigma), not the
# system's site-packages; ca-certificates: pip and the node's https RPC need them.
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    "$suite" "$root" "$MIRROR" >&2
# A machine behind a TLS-inspecting proxy trusts an extra CA: the build's pip needs it too.
if [[ -f /etc/ssl/certs/ca-certificates.crt ]]; then
    cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
fi
# What a container never uses: apt's lists, docs, man pages, locales (about 60 MB).
chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* "$root"/usr/share/man/* \
    "$root"/usr/share/locale/* "$root"/var/cache/debconf/*-old "$root"/var/log/*.log
tar --numeric-owner -C "$root" -c . | podman import \
    --change 'CMD ["/usr/bin/python3"]' --change 'ENV LANG=C.UTF-8' - "$tag" >/dev/null
echo "$tag"
