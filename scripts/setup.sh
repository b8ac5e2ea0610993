#!/usr/bin/env bash
# Installs everything simrun needs on a fresh Debian machine: the Arm
# toolchain, QEMU, CMake, Chromium (the HTML report test renders in it) and
# the package itself with its test extras. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib
              qemu-system-arm cmake chromium)

SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

# Instruction counting builds our QEMU plugin against QEMU's own plugin header, which
# no binary package ships: simrun takes it from Debian's qemu source package
# (`apt-get source qemu`, see simrun/device/qemu_plugin.py), so APT needs source
# entries beside the binary ones it already has. Added once, for the Debian entries only.
update=0
if [ -f /etc/apt/sources.list.d/debian.sources ] && grep -q '^Types: deb$' /etc/apt/sources.list.d/debian.sources; then
  echo "setup: enabling Debian source entries (deb-src) for APT"
  $SUDO sed -i 's/^Types: deb$/Types: deb deb-src/' /etc/apt/sources.list.d/debian.sources
  update=1
elif [ -f /etc/apt/sources.list ] && grep -q '^deb .*debian' /etc/apt/sources.list && ! grep -q '^deb-src ' /etc/apt/sources.list; then
  echo "setup: enabling Debian source entries (deb-src) for APT"
  grep '^deb .*debian' /etc/apt/sources.list | sed 's/^deb /deb-src /' | $SUDO tee -a /etc/apt/sources.list >/dev/null
  update=1
fi
if [ ${#missing[@]} -gt 0 ] || [ "$update" -eq 1 ]; then
  $SUDO apt-get update -qq
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
echo "setup: installing simrun with test extras into $($PYTHON -c 'import sys; print(sys.prefix)')"
$PYTHON -m pip install -q --disable-pip-version-check -e ".[test]"
echo "setup: done"
