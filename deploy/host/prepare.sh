#!/usr/bin/env bash
# Prepare this machine as a hypervisor (and for the test suite): Debian packages, libvirt
# daemons, /dev/kvm access, the default network. Idempotent; needs root. Works without systemd.
set -euo pipefail

PACKAGES=(
  redis-server libvirt-daemon-system libvirt-dev pkg-config qemu-system-x86 qemu-utils
  openssh-server virtinst osinfo-db dnsmasq-base genisoimage xorriso iproute2 python3-venv
  postgresql sudo curl jq
  chromium  # the test suite renders the API's docs page in a headless browser
)

missing=()
for package in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$package")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi

# No systemd here: start the libvirt daemons ourselves when they are not running.
pgrep -x virtlogd >/dev/null || virtlogd -d
pgrep -x libvirtd >/dev/null || libvirtd -d
for _ in $(seq 1 100); do
  virsh -c qemu:///system version >/dev/null 2>&1 && break
  sleep 0.2
done
virsh -c qemu:///system version >/dev/null

# /dev/kvm is root-only on these machines; libvirt's qemu user needs it (else guests use TCG).
if [ -e /dev/kvm ]; then
  chgrp kvm /dev/kvm && chmod 660 /dev/kvm
fi

if ! virsh -c qemu:///system net-info default 2>/dev/null | grep -q "Active:.*yes"; then
  virsh -c qemu:///system net-start default >/dev/null 2>&1 || echo "note: libvirt network 'default' did not start"
fi
mkdir -p /run/sshd
