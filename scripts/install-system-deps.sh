#!/usr/bin/env bash
# System packages from Debian/Ubuntu:
#   --runtime               what Qt's xcb platform plugin loads (make run): as root, installs the
#                           missing ones; otherwise prints the one sudo line and fails, so that make
#                           stops before Qt would abort
#   --if-root-and-missing   runtime + test tools (make test): installs as root, else only a note
#   (no flag)               runtime + test tools, installed (CI; uses sudo when not root)
# The test tools are Xvfb + xdotool (a real drag and drop on a virtual screen) and ImageMagick
# (screenshots); tests that need them skip cleanly when they are missing.
# The runtime list lives in designer/ui/preflight.py (XCB_LIBRARIES), which `designer` also checks
# before it starts Qt.
set -u
cd "$(dirname "$0")/.."
mode="${1:-}"
[ "$(uname -s)" = Linux ] || exit 0
need=($(python3 designer/ui/preflight.py --missing-packages))
if [ "$mode" != --runtime ]; then
  command -v Xvfb >/dev/null 2>&1 || need+=(xvfb)
  command -v xdotool >/dev/null 2>&1 || need+=(xdotool)
  command -v import >/dev/null 2>&1 || need+=(imagemagick)
fi
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  case "$mode" in
    --runtime)
      echo "designer: the window needs system libraries that are missing; install them with:" >&2
      echo "  sudo apt-get install -y ${need[*]}" >&2
      exit 1 ;;
    --if-root-and-missing)
      echo "note: ${need[*]} missing; the window tests that need them will skip" >&2
      exit 0 ;;
  esac
  SUDO=sudo
else
  SUDO=""
fi
echo "installing system packages: ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null && $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
