#!/usr/bin/env bash
# Installs the Debian packages the tests and the demo need, only when one is missing.
set -euo pipefail
# golang-go and the two -dev packages build testbed/cniclient (libcni and go-cni, Debian's sources, no download);
# iptables serves portmap and the hairpin tests; buildah and debootstrap build the image from an offline base;
# gcc and libc6-dev build make bench's exec meter (scripts/rusage.c, static).
packages=(iproute2 util-linux iputils-ping iptables containerd runc containernetworking-plugins busybox-static podman etcd-server time
  golang-go golang-github-appc-cni-dev golang-github-containerd-go-cni-dev buildah debootstrap gcc libc6-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
