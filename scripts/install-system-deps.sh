#!/usr/bin/env bash
# System packages some tests use: Xvfb + xdotool (a real drag-and-drop under a virtual screen)
# and ImageMagick (screenshots). Tests that need them skip cleanly when they are missing.
set -u
need=()
command -v Xvfb >/dev/null 2>&1 || need+=(xvfb)
command -v xdotool >/dev/null 2>&1 || need+=(xdotool)
command -v import >/dev/null 2>&1 || need+=(imagemagick)
# Qt's xcb platform plugin needs these at run time under Xvfb.
[ -e /usr/lib/x86_64-linux-gnu/libxcb-cursor.so.0 ] || need+=(libxcb-cursor0)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "${1:-}" = "--if-root-and-missing" ] && [ "$(id -u)" != 0 ]; then
  echo "note: ${need[*]} missing; the real drag-and-drop test will skip" >&2
  exit 0
fi
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null && $SUDO apt-get install -y -qq "${need[@]}" \
  libegl1 libgl1 libxkbcommon-x11-0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 \
  libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 libxcb-xkb1 libdbus-1-3 \
  libfontconfig1 >/dev/null
