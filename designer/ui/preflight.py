"""Can this machine show the window? Checked before Qt is imported, because Qt aborts the process
(a core dump, exit 134) when it has no display or its xcb platform plugin misses a system library,
and no Python code of ours runs after that.

Standard library only: ``python3 designer/ui/preflight.py --missing-packages`` also serves the
install script, before the project's virtual environment exists.

    designer: no display: ...           (exit 2, one line, from ``designer``)
    designer: Qt needs system libraries that are missing: ...
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable

#: What Qt's xcb platform plugin (libqxcb.so, libQt6XcbQpa, libQt6Gui) loads from the system, by
#: soname, with the Debian/Ubuntu package that ships it (from ``ldd`` of the PySide6 wheel's
#: plugin). ``libxcb-cursor0`` is the one a fresh desktop usually lacks (Qt >= 6.5).
XCB_LIBRARIES = {
    "libxcb.so.1": "libxcb1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libX11.so.6": "libx11-6",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libfontconfig.so.1": "libfontconfig1",
    "libdbus-1.so.3": "libdbus-1-3",
}

HEADLESS_HINT = ("use 'designer train FILE' or 'designer check FILE' here, or start the window "
                 "on a desktop (or through 'ssh -X')")


def _loads(soname: str) -> bool:
    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


def missing_packages(loads: Callable[[str], bool] = _loads) -> list[str]:
    """The packages whose libraries Qt's xcb plugin needs and the dynamic loader cannot find."""
    if not sys.platform.startswith("linux"):
        return []
    return sorted({pkg for soname, pkg in XCB_LIBRARIES.items() if not loads(soname)})


def _display_reachable(display: str) -> bool:
    """Whether an X server answers on ``display`` (libxcb's own connect, as Qt would)."""
    try:
        xcb = ctypes.CDLL("libxcb.so.1")
    except OSError:
        return True  # reported as a missing package instead
    xcb.xcb_connect.restype = ctypes.c_void_p
    xcb.xcb_connect.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    xcb.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
    xcb.xcb_disconnect.argtypes = [ctypes.c_void_p]
    conn = xcb.xcb_connect(display.encode(), None)
    try:
        return conn is not None and xcb.xcb_connection_has_error(conn) == 0
    finally:
        if conn is not None:
            xcb.xcb_disconnect(conn)


def window_problem(environ: dict[str, str] | None = None,
                   loads: Callable[[str], bool] = _loads,
                   reachable: Callable[[str], bool] = _display_reachable) -> str | None:
    """Why the window cannot open here (one line, saying what to do), or None when it can.

    Only the X11 (xcb) path is checked: another platform chosen with ``QT_QPA_PLATFORM``
    (offscreen, vnc, wayland ...), a Wayland session, and other operating systems are left to Qt.
    """
    env = os.environ if environ is None else environ
    if not sys.platform.startswith("linux"):
        return None
    platform = env.get("QT_QPA_PLATFORM", "").split(":")[0].strip()
    if platform and platform != "xcb":
        return None
    if not platform and env.get("WAYLAND_DISPLAY"):
        return None
    display = env.get("DISPLAY", "")
    if not display:
        return f"no display (DISPLAY is not set), so the window cannot open: {HEADLESS_HINT}"
    missing = missing_packages(loads)
    if missing:
        return (f"Qt needs system libraries that are missing: {' '.join(missing)}; install them "
                f"with: sudo apt-get install -y {' '.join(missing)}")
    if not reachable(display):
        return (f"cannot connect to the display {display!r} (no X server answers there): "
                f"{HEADLESS_HINT}")
    return None


def main(argv: list[str]) -> int:
    """``--missing-packages``: print the missing packages, one line (nothing when none)."""
    if argv[:1] == ["--missing-packages"]:
        missing = missing_packages()
        if missing:
            print(" ".join(missing))
        return 0
    problem = window_problem()
    if problem:
        print(f"designer: {problem}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
