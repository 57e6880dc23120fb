"""Python syntax highlighting for the code previews (a QSyntaxHighlighter, no extra dependency)."""

from __future__ import annotations

import builtins
import keyword
import re

from PySide6.QtGui import QColor, QFont, QSyntaxHighlighter, QTextCharFormat


def _fmt(colour: str, bold: bool = False, italic: bool = False) -> QTextCharFormat:
    f = QTextCharFormat()
    f.setForeground(QColor(colour))
    if bold:
        f.setFontWeight(QFont.Bold)
    f.setFontItalic(italic)
    return f


class PythonHighlighter(QSyntaxHighlighter):
    """Keywords, builtins, numbers, strings (triple-quoted across lines), comments, decorators and
    the names after ``def``/``class``."""

    # block states: 0 normal, 1 inside ''' , 2 inside """
    _TRIPLES = ((1, "'''"), (2, '"""'))

    def __init__(self, document) -> None:
        super().__init__(document)
        self.formats = {
            "keyword": _fmt("#0033b3", bold=True),
            "builtin": _fmt("#000080"),
            "self": _fmt("#94558d", italic=True),
            "number": _fmt("#1750eb"),
            "string": _fmt("#067d17"),
            "comment": _fmt("#8c8c8c", italic=True),
            "decorator": _fmt("#9e880d"),
            "defname": _fmt("#00627a", bold=True),
        }
        kw = "|".join(sorted(keyword.kwlist + list(getattr(keyword, "softkwlist", [])),
                             key=len, reverse=True))
        names = sorted({n for n in dir(builtins) if not n.startswith("_")}, key=len, reverse=True)
        self._rules = [
            (re.compile(rf"\b(?:{kw})\b"), "keyword"),
            (re.compile(rf"\b(?:{'|'.join(names)})\b"), "builtin"),
            (re.compile(r"\b(?:self|cls)\b"), "self"),
            (re.compile(r"\b(?:0[xX][0-9a-fA-F_]+|\d[\d_]*\.?\d*(?:[eE][+-]?\d+)?j?)\b"), "number"),
            (re.compile(r"^\s*@[\w.]+"), "decorator"),
            (re.compile(r"\b(?:def|class)\s+(\w+)"), "defname"),
        ]
        # strings and comments, scanned left to right so '#' inside a string is not a comment
        self._token = re.compile(
            r"(?P<triple>[rbuRBUfF]{0,2}(?:'''|\"\"\"))"
            r"|(?P<string>[rbuRBUfF]{0,2}(?:'(?:\\.|[^'\\\n])*'?|\"(?:\\.|[^\"\\\n])*\"?))"
            r"|(?P<comment>#.*$)"
        )

    def highlightBlock(self, text: str) -> None:
        for rx, name in self._rules:
            for m in rx.finditer(text):
                if name == "defname":
                    self.setFormat(m.start(1), m.end(1) - m.start(1), self.formats[name])
                else:
                    self.setFormat(m.start(), m.end() - m.start(), self.formats[name])
        self.setCurrentBlockState(0)
        pos = 0
        prev = self.previousBlockState()
        if prev in (1, 2):
            delim = self._TRIPLES[prev - 1][1]
            end = text.find(delim)
            if end < 0:
                self.setFormat(0, len(text), self.formats["string"])
                self.setCurrentBlockState(prev)
                return
            pos = end + 3
            self.setFormat(0, pos, self.formats["string"])
        while pos < len(text):
            m = self._token.search(text, pos)
            if m is None:
                break
            if m.group("comment") is not None:
                self.setFormat(m.start(), len(text) - m.start(), self.formats["comment"])
                break
            if m.group("triple") is not None:
                delim = m.group("triple")[-3:]
                end = text.find(delim, m.end())
                if end < 0:
                    self.setFormat(m.start(), len(text) - m.start(), self.formats["string"])
                    self.setCurrentBlockState(1 if delim == "'''" else 2)
                    return
                self.setFormat(m.start(), end + 3 - m.start(), self.formats["string"])
                pos = end + 3
                continue
            self.setFormat(m.start(), m.end() - m.start(), self.formats["string"])
            pos = m.end()

    def format_name_at(self, block, column: int) -> str | None:
        """Which of our formats covers a character (for tests): the name, or None."""
        for r in block.layout().formats():
            if r.start <= column < r.start + r.length:
                for name, f in self.formats.items():
                    if r.format.foreground().color() == f.foreground().color():
                        return name
        return None
