#!/usr/bin/env bash
# Install everything the test suite needs on a fresh Debian/Ubuntu machine.
#
#   bash tools/install_test_deps.sh && python -m pytest --xvfb-backend=xvfb
#
# - Debian packages for a headless Qt/OpenGL viewer (napari tests run under Xvfb; Qt's
#   "offscreen" platform has no OpenGL and napari's canvas fails there), and Chromium, in which
#   a test renders report.html;
# - the package with all extras (napari, dask, test tools) in the current Python.
# Then run pytest (slow accuracy studies are deselected by default: add `-m slow` to run them).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES="xvfb xauth libgl1 libgl1-mesa-dri libegl1 libglib2.0-0 libfontconfig1 \
fonts-dejavu-core libdbus-1-3 libxkbcommon0 libxkbcommon-x11-0 libx11-xcb1 libxcb-cursor0 \
libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-shape0 \
libxcb-xfixes0 libxcb-xkb1 libxcb-xinerama0 chromium"

missing=""
if command -v dpkg-query >/dev/null 2>&1; then
  for p in $APT_PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
  done
fi
if [ -n "$missing" ]; then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "Installing Debian packages:$missing" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

python -m pip install -q --disable-pip-version-check -e ".[all]"
