"""File names that are not valid UTF-8, stored losslessly and shown escaped.

POSIX file names are bytes; Python decodes the undecodable ones with ``surrogateescape``
(byte 0xE9 becomes the lone surrogate U+DCE9), which Parquet, JSON and HDF5 refuse to encode.
:func:`escape_name` turns such a string into plain printable text: each escaped byte becomes
``\\xNN``, a backslash becomes ``\\\\``, and control characters (a newline in a file name) become
``\\n``, ``\\t`` or ``\\xNN``. :func:`unescape_name` inverts it exactly, so the shard stage can open
the file the scan found. Names that are valid, printable UTF-8 without a backslash are unchanged.
"""
from __future__ import annotations

import re

_NEEDS_ESCAPE = re.compile(r"[\\\udc80-\udcff\x00-\x1f\x7f]")
_ESCAPE = re.compile(r"\\(\\|n|t|r|x[0-9a-f]{2}|u[0-9a-f]{4})")
_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\\": "\\\\"}


def _escape_char(m: re.Match[str]) -> str:
    c = m.group(0)
    if c in _NAMED:
        return _NAMED[c]
    code = ord(c)
    return f"\\x{code - 0xDC00:02x}" if code >= 0xDC80 else f"\\u{code:04x}"


def escape_name(name: str) -> str:
    """Printable, UTF-8-encodable form of a path or id (see the module docstring)."""
    return _NEEDS_ESCAPE.sub(_escape_char, name) if _NEEDS_ESCAPE.search(name) else name


def _unescape_match(m: re.Match[str]) -> str:
    code = m.group(1)
    if code == "\\":
        return "\\"
    if code in ("n", "t", "r"):
        return {"n": "\n", "t": "\t", "r": "\r"}[code]
    if code[0] == "x":
        return chr(0xDC00 + int(code[1:], 16))
    return chr(int(code[1:], 16))


def unescape_name(name: str) -> str:
    """Invert :func:`escape_name` (the result may hold surrogate escapes: pass it to ``open`` as is)."""
    return _ESCAPE.sub(_unescape_match, name) if "\\" in name else name
