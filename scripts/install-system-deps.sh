#!/usr/bin/env bash
# Installs the Debian packages Ferry and its tests need. Called by `npm run setup` and by .ci/run.
# Idempotent: packages already present are skipped, so a warm machine pays only a dpkg query.
set -euo pipefail

PACKAGES=(
  qemu-utils        # qemu-img / qemu-io: the test oracle and the benchmark reference
  qemu-system-x86   # boots images in end-to-end tests
  zstd              # creates zstd-compressed qcow2 fixtures via qemu-img (zstd is linked in) and CLI checks
  coreutils
  awscli            # /usr/bin/aws 2.9.19: the unmodified `aws sms` CLI for API conformance tests
  time              # GNU time: peak RSS in benchmarks
  restic            # the reference tool of bench/store.ts (image store vs restic)
  genisoimage       # cloud-init NoCloud seed ISOs of launched instances (user data, configure scripts)
  # ../shared/tools/boot (bootable test disks for replicate → launch end-to-end tests):
  syslinux syslinux-common mtools dosfstools fdisk cpio kmod xz-utils
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-system-deps: all packages present"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-system-deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
