"""Writing Python source safely: user text into comments and literals, class names from any text,
an example input as code, and formatting. Used by the model writer and by every train.py writer.

User text never becomes code: project names and descriptions go into comments with control
characters removed (:func:`comment_text`), dataset paths and names into string literals through
one helper (:func:`literal`), and class names are built from ASCII letters and digits only.
"""

from __future__ import annotations

import ast
import builtins
import keyword
import math
import re
import shutil
import subprocess
import sys
import unicodedata
from typing import Any

from .modules import HELPER_CLASSES

# Names the generated files define or import at module level, plus ones a reader expects to mean
# the usual thing. Forward variables never take these names.
MODULE_NAMES = frozenset({
    "torch", "nn", "F", "math", "np", "self", "load", "main", "model", "train", "evaluate",
    "argparse", "os", "sys", "json", "csv", "random", "time", "Path", "INPUT_SHAPES",
    *HELPER_CLASSES,
})
BUILTIN_NAMES = frozenset(dir(builtins))


class CodegenError(ValueError):
    """The design cannot be exported (it has errors); the message says what to fix."""



# --------------------------------------------------------------------------------------------
# Safe text
# --------------------------------------------------------------------------------------------


def comment_text(text: Any, limit: int = 200) -> str:
    """``text`` as one line that is safe inside a ``#`` comment: control, format and separator
    characters (newlines, bidi overrides) become spaces; runs of spaces collapse."""
    s = str(text)
    out = []
    for ch in s[: limit * 2]:
        cat = unicodedata.category(ch)
        out.append(" " if cat[0] == "C" or cat in ("Zl", "Zp") else ch)
    line = re.sub(r"\s+", " ", "".join(out)).strip()
    return line if len(line) <= limit else line[: limit - 3] + "..."


def comment_lines(text: Any, max_lines: int = 12, width: int = 96) -> list[str]:
    """A multi-line text (a description) as comment bodies, one per source line, each safe."""
    lines: list[str] = []
    for raw in str(text).splitlines():
        line = comment_text(raw, limit=2000)
        while len(line) > width:
            cut = line.rfind(" ", 0, width)
            cut = cut if cut > 20 else width
            lines.append(line[:cut].rstrip())
            line = line[cut:].lstrip()
        lines.append(line)
    while lines and not lines[-1]:
        lines.pop()
    if len(lines) > max_lines:
        lines = lines[: max_lines - 1] + ["..."]
    return lines


def literal(value: Any) -> str:
    """Source for a plain value (None, bool, int, finite float, str, list/tuple of those).

    Strings use ``repr``, which always gives one line that evaluates back to the same text."""
    if value is None or isinstance(value, (bool, int)):
        return repr(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise CodegenError(f"cannot write the number {value!r} into code")
        return repr(value)
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, tuple):
        items = ", ".join(literal(v) for v in value)
        return f"({items},)" if len(value) == 1 else f"({items})"
    if isinstance(value, list):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{literal(k)}: {literal(v)}" for k, v in value.items()) + "}"
    raise CodegenError(f"cannot write a value of type {type(value).__name__} into code")


def class_name(text: Any, fallback: str = "Net") -> str:
    """A CamelCase class name from free text: ASCII letters and digits only, never a keyword or
    a builtin (``"MLP on digits"`` -> ``MLPOnDigits``, ``"x; import os"`` -> ``XImportOs``)."""
    plain = "".join(ch for ch in unicodedata.normalize("NFKD", str(text)[:1000])
                    if unicodedata.category(ch) != "Mn")  # "é" -> "e"
    words = re.findall(r"[A-Za-z0-9]+", plain)
    name = "".join(w[:1].upper() + w[1:] for w in words)[:60]
    if not name:
        return fallback
    if name[0].isdigit():
        name = fallback + name
    if keyword.iskeyword(name) or name in BUILTIN_NAMES or name in MODULE_NAMES:
        name += fallback
    return name


def example_input(shape: tuple[int, ...], dtype: str) -> str:
    """A model's example input as code (``torch.randn(1, 3, 32, 32)``)."""
    dims = ", ".join(["1", *map(str, shape)])
    if dtype == "int64":
        return f"torch.zeros({dims}, dtype=torch.long)"
    return f"torch.randn({dims})"



# --------------------------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------------------------


def format_source(source: str) -> str:
    """Format with ruff's formatter when it is available; otherwise return ``source`` unchanged.

    The source must parse before and after (a formatter bug must not produce broken code)."""
    ast.parse(source)
    commands = [[sys.executable, "-m", "ruff"]]
    exe = shutil.which("ruff")
    if exe:
        commands.append([exe])
    for cmd in commands:
        try:
            done = subprocess.run(
                [*cmd, "format", "--isolated", "--line-length", "100", "-"],
                input=source, capture_output=True, text=True, timeout=30, encoding="utf-8",
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            continue
        if done.returncode == 0 and done.stdout:
            try:
                ast.parse(done.stdout)
            except SyntaxError:  # pragma: no cover - never seen
                return source
            return done.stdout
    return source

