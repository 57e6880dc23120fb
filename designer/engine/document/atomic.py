"""Atomic writes: a temporary file beside the target, then a rename over it.

Every file the designer writes (projects, exported code, checkpoints, run records) goes through
:func:`atomic_path`, so that a crash or a kill never leaves a half-written file under the real
name, and the next write of the same path removes what a killed writer left behind.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

# Temporaries are named ".<target name>.<pid>-<random>.tmp" (a backup's ".<name>.bak.<pid>-...")
# so that the next write of the same target can tell a killed writer's leftovers (its process is
# gone) from a write in progress in another process or thread.
_ACTIVE: set[str] = set()  # temporaries this process is writing now
_ACTIVE_LOCK = threading.Lock()
_LEGACY_AGE_S = 600.0  # temporaries without a process id (older versions): removed after this


def _new_temporary(path: Path) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}-", suffix=".tmp",
                               dir=path.parent)
    os.close(fd)
    with _ACTIVE_LOCK:
        _ACTIVE.add(tmp)
    return Path(tmp)


def _done(tmp: Path, remove: bool) -> None:
    if remove:
        with suppress(OSError):
            os.unlink(tmp)
    with _ACTIVE_LOCK:
        _ACTIVE.discard(str(tmp))


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Delete the temporaries that writers of ``path`` (and of its backup) left when they were
    killed: those of a process that no longer exists, or of this process but no longer in use.
    Returns the paths removed. Never raises (a file that cannot be removed is left)."""
    path = Path(path)
    pattern = re.compile(re.escape(f".{path.name}.") + r"(?:bak\.)?(?:(\d+)-)?[^/\\]*\.tmp")
    removed = []
    try:
        candidates = [e for e in os.scandir(path.parent)
                      if e.name.startswith(f".{path.name}.") and e.name.endswith(".tmp")]
    except OSError:
        return removed
    for entry in candidates:
        m = pattern.fullmatch(entry.name)
        if m is None:
            continue
        if not _stale(entry, m.group(1)):
            continue
        with suppress(OSError):
            os.unlink(entry.path)
            removed.append(Path(entry.path))
    return removed


def _stale(entry: os.DirEntry, pid_text: str | None) -> bool:
    if pid_text is None or os.name != "posix":  # no process id, or no safe way to probe one
        try:
            return time.time() - entry.stat(follow_symlinks=False).st_mtime > _LEGACY_AGE_S
        except OSError:
            return False
    pid = int(pid_text)
    if pid == os.getpid():
        with _ACTIVE_LOCK:
            return entry.path not in _ACTIVE
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError, OSError):
        return False  # exists (another user's), or cannot tell
    return False


def _file_mode(path: Path) -> int:
    """The mode a plain ``open(path, "w")`` would give: the existing file's, else 0666 less the
    umask (``mkstemp`` makes 0600 files, which exported code and checkpoints must not be)."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return 0o666 & ~_umask()


def _umask() -> int:
    try:  # Linux: read it without changing it (os.umask would, for a moment, for every thread)
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _backup(path: Path) -> None:
    """``<name>.bak`` becomes the current file, atomically: a hard link (or else a copy) under a
    temporary name, then a rename. A kill at any moment leaves the old backup or the new one."""
    bak = path.with_name(path.name + ".bak")
    tmp = _new_temporary(bak)
    try:
        os.unlink(tmp)
        try:
            os.link(path, tmp)
        except OSError:  # no hard links here (some network and FAT file systems): copy
            shutil.copy2(path, tmp)
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, bak)
    finally:
        # Also after the rename: when a killed save had already linked the backup to the current
        # file, renaming one link of a file over another does nothing and leaves ``tmp``.
        _done(tmp, remove=True)


def _sync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX); best effort."""
    if os.name != "posix":
        return
    with suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextmanager
def atomic_path(path: Path, backup: bool = False) -> Iterator[Path]:
    """Yield a temporary file beside ``path``; when the block succeeds it is renamed over ``path``
    (the old file kept as ``<name>.bak`` with ``backup``, also by a rename), when it fails it is
    removed. A crash can never leave a half-written file under the real name or the backup's, and
    what a killed writer left behind is removed by the next write of the same path. The file gets
    the mode a plain write would give (the old file's, else 0666 less the umask)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = _new_temporary(path)
    ok = False
    try:
        os.chmod(tmp, _file_mode(path))
        yield tmp
        if backup and path.exists():
            _backup(path)
        os.replace(tmp, path)
        ok = True
        _sync_folder(path.parent)
    finally:
        _done(tmp, remove=not ok)


def atomic_write_text(p: Path, text: str, backup: bool = False) -> None:
    with atomic_path(p, backup=backup) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
