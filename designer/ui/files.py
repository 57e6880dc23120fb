"""Recent files and crash recovery.

:class:`RecentFiles` keeps the most recently opened or saved projects in QSettings.

:class:`Autosave` writes the open document to a recovery file every 30 seconds while it has
unsaved changes. Recovery files live in the user data folder (``platformdirs``), never next to the
user's file, so an autosave can never overwrite it. Each running window holds a ``QLockFile`` for
its recovery file; a recovery file whose lock is free belongs to a session that ended without
cleaning up (a crash, a kill, a power cut), and the next start offers to restore it. A clean exit
deletes the recovery file.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QLockFile, QObject, QSettings, QTimer, Signal, Slot

from ..engine.document.atomic import atomic_write_text
from ..engine.document.project import (
    SUFFIX,
    Project,
    ProjectError,
    load_project,
    project_to_json,
)

#: Milliseconds between autosaves.
AUTOSAVE_INTERVAL_MS = 30_000
MAX_RECENT = 10
_RECENT_KEY = "files/recent"


def default_recovery_dir() -> Path:
    """``<user data folder>/designer/recovery`` (e.g. ``~/.local/share/designer/recovery``)."""
    from platformdirs import user_data_path

    return user_data_path("designer", appauthor=False) / "recovery"


# --------------------------------------------------------------------------------------------
# Recent files
# --------------------------------------------------------------------------------------------


class RecentFiles:
    """The list of recently used project files, newest first, stored in QSettings."""

    def __init__(self, settings: QSettings) -> None:
        self.settings = settings

    def paths(self) -> list[Path]:
        raw = self.settings.value(_RECENT_KEY, [])
        if isinstance(raw, str):  # QSettings returns a lone string for one-element lists
            raw = [raw]
        return [Path(p) for p in (raw or []) if isinstance(p, str) and p]

    def add(self, path: str | os.PathLike) -> None:
        p = Path(path).resolve()
        items = [p] + [q for q in self.paths() if q != p]
        self._store(items[:MAX_RECENT])

    def remove(self, path: str | os.PathLike) -> None:
        p = Path(path).resolve()
        self._store([q for q in self.paths() if q != p])

    def clear(self) -> None:
        self._store([])

    def _store(self, items: list[Path]) -> None:
        self.settings.setValue(_RECENT_KEY, [str(p) for p in items])
        self.settings.sync()


# --------------------------------------------------------------------------------------------
# Autosave and recovery
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recovery:
    """An autosave left behind by a session that did not exit cleanly."""

    file: Path  # the recovery project file
    original: Path | None  # the file the user was editing (None: never saved)
    saved_at: float  # time.time() of the autosave
    name: str  # project name

    def load(self) -> Project:
        return load_project(self.file)

    def discard(self) -> None:
        for p in (self.file, _meta_path(self.file), _lock_path(self.file)):
            try:
                p.unlink()
            except FileNotFoundError:
                pass
            except OSError:
                pass

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.saved_at))
        what = str(self.original) if self.original else "an unsaved design"
        return f"“{self.name}” ({what}), autosaved {when}"


def _meta_path(file: Path) -> Path:
    return file.with_name(file.name[: -len(SUFFIX)] + ".meta.json")


def _lock_path(file: Path) -> Path:
    return file.with_name(file.name[: -len(SUFFIX)] + ".lock")


def pending_recoveries(directory: str | os.PathLike | None = None) -> list[Recovery]:
    """Recovery files of sessions that ended without cleaning up, newest first.

    A file whose lock is held belongs to a window that is still open and is skipped.
    """
    folder = Path(directory) if directory is not None else default_recovery_dir()
    if not folder.is_dir():
        return []
    out = []
    for file in folder.glob(f"session-*{SUFFIX}"):
        lock = QLockFile(str(_lock_path(file)))
        if not lock.tryLock(0):
            continue  # a running session owns it (a stale lock of a dead process is taken over)
        lock.unlock()
        original, saved_at, name = None, file.stat().st_mtime, file.name
        try:
            meta = json.loads(_meta_path(file).read_text(encoding="utf-8"))
            if isinstance(meta.get("original"), str) and meta["original"]:
                original = Path(meta["original"])
            if isinstance(meta.get("saved_at"), (int, float)):
                saved_at = float(meta["saved_at"])
            if isinstance(meta.get("name"), str):
                name = meta["name"]
        except (OSError, ValueError, AttributeError):
            pass  # the project file alone is enough to restore
        out.append(Recovery(file, original, saved_at, name))
    return sorted(out, key=lambda r: r.saved_at, reverse=True)


class Autosave(QObject):
    """Autosaves one document to its own recovery file while it has unsaved changes."""

    saved = Signal(object)  # Path of the recovery file
    failed = Signal(str)

    def __init__(self, document, directory: str | os.PathLike | None = None,
                 interval_ms: int = AUTOSAVE_INTERVAL_MS, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.directory = Path(directory) if directory is not None else default_recovery_dir()
        session = f"session-{uuid.uuid4().hex[:12]}"
        self.file = self.directory / f"{session}{SUFFIX}"
        self._lock: QLockFile | None = None
        self._dirty = False
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.save_now)
        document.changed.connect(self._on_changed)
        self._timer.start()

    @Slot()
    def _on_changed(self) -> None:
        # After a save or a fresh open the recovery copy is no longer needed.
        if self.document.is_modified():
            self._dirty = True
        else:
            self._dirty = False
            self._remove_files()

    @Slot()
    def save_now(self) -> bool:
        """Write the recovery file if there are unsaved changes; True if it was written."""
        if not self._dirty or not self.document.is_modified():
            return False
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            if self._lock is None:
                lock = QLockFile(str(_lock_path(self.file)))
                lock.setStaleLockTime(0)
                if lock.tryLock(0):
                    self._lock = lock
            project = self.document.project
            atomic_write_text(self.file, project_to_json(project))
            path = self.document.path
            meta = {"original": str(path) if path else None, "saved_at": time.time(),
                    "name": project.name}
            atomic_write_text(_meta_path(self.file), json.dumps(meta))
        except (OSError, ValueError) as exc:
            self.failed.emit(f"Autosave failed: {exc}")
            return False
        self._dirty = False
        self.saved.emit(self.file)
        return True

    def finish(self) -> None:
        """Clean exit: stop autosaving and delete the recovery file."""
        self._timer.stop()
        self._remove_files()

    def _remove_files(self) -> None:
        for p in (self.file, _meta_path(self.file)):
            try:
                p.unlink()
            except FileNotFoundError:
                pass
            except OSError:
                pass
        if self._lock is not None:
            self._lock.unlock()  # also removes the lock file
            self._lock = None


__all__ = [
    "AUTOSAVE_INTERVAL_MS",
    "Autosave",
    "ProjectError",
    "RecentFiles",
    "Recovery",
    "default_recovery_dir",
    "pending_recoveries",
]
