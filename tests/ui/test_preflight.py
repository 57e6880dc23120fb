"""``designer`` checks for a display and Qt's system libraries before Qt can abort the process."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from designer.ui import preflight

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="xcb is Linux's")


def _all_load(_soname: str) -> bool:
    return True


def test_no_display_is_one_line_naming_the_cli():
    msg = preflight.window_problem({}, loads=_all_load, reachable=lambda d: True)
    assert msg.startswith("no display")
    assert "designer train" in msg and "designer check" in msg and "\n" not in msg


def test_missing_library_names_its_package():
    msg = preflight.window_problem({"DISPLAY": ":0"},
                                   loads=lambda so: so != "libxcb-cursor.so.0",
                                   reachable=lambda d: True)
    assert "libxcb-cursor0" in msg and "sudo apt-get install -y libxcb-cursor0" in msg
    assert preflight.missing_packages(lambda so: so not in ("libxcb-icccm.so.4", "libGL.so.1")) \
        == ["libgl1", "libxcb-icccm4"]


def test_unreachable_display():
    msg = preflight.window_problem({"DISPLAY": ":93"}, loads=_all_load,
                                   reachable=lambda d: False)
    assert "cannot connect to the display ':93'" in msg


@pytest.mark.parametrize("env", [{"QT_QPA_PLATFORM": "offscreen"}, {"QT_QPA_PLATFORM": "vnc"},
                                 {"WAYLAND_DISPLAY": "wayland-0"}])
def test_other_platforms_are_left_to_qt(env):
    assert preflight.window_problem(env, loads=lambda so: False, reachable=lambda d: False) is None


def test_ok_when_everything_is_there():
    assert preflight.window_problem({"DISPLAY": ":0"}, loads=_all_load,
                                    reachable=lambda d: True) is None


def test_real_connect_to_a_display_nobody_serves():
    # libxcb's own connect: no X server listens on display 987 here.
    assert preflight._display_reachable(":987") is False


@pytest.mark.parametrize("display", [None, ":987"])
def test_designer_without_a_usable_display_exits_2_with_one_line(display):
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    if display:
        env["DISPLAY"] = display
    proc = subprocess.run([sys.executable, "-m", "designer"], env=env, capture_output=True, check=False,
                          text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("designer: "), proc.stderr
    assert proc.stdout == ""


def test_install_script_lists_what_the_loader_cannot_find():
    proc = subprocess.run([sys.executable, preflight.__file__, "--missing-packages"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0
    assert proc.stdout.split() == preflight.missing_packages()
