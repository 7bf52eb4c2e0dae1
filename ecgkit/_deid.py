"""De-identification under ``--pseudonymize``: record ids from a keyed hash, scrubbed text.

What a pseudonymised cohort keeps out of every output but the identifiable mapping file:

- **record ids** are ``r`` + HMAC-SHA256(key, SHA-256 of the record's file)[:20 hex]: derived from
  the file's content, not its path (a folder named after the patient never reaches an id), stable
  when the archive moves or another source is scanned beside it, unpredictable without the key;
- **source paths** go to ``IDENTIFIABLE_source_paths.parquet`` only (the shard stage needs them to
  read the signals; keep that file off the training machine or delete it after sharding);
- **reasons** never contain the path, nor the file's or its folders' names;
- **statements** are scrubbed of identifier-like tokens: the patient id and the names the same file
  holds, MRN-like digit runs (6 or more digits), dates (which may be dates of birth) and phone
  numbers, each replaced by ``[removed]`` and counted.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import re
from typing import Iterable, Sequence

from ecgkit.io._limits import MAX_FILE_BYTES

#: ``source_path`` of every row of a pseudonymised manifest (the real paths are in the mapping file)
PSEUDONYMIZED_PATH = "<pseudonymized: see IDENTIFIABLE_source_paths.parquet>"
#: the mapping file record_id -> source_path written beside a pseudonymised manifest
SOURCE_MAP_FILE = "IDENTIFIABLE_source_paths.parquet"
#: the skipped-files list of a pseudonymised scan (paths), beside the mapping file
SKIPPED_MAP_FILE = "IDENTIFIABLE_skipped_files.csv"
REMOVED = "[removed]"

_PATTERNS = (
    # phone numbers: +1 555 123 4567, (555) 123-4567, 555-123-4567 (not interval lists like 160/120/400)
    re.compile(r"(?<![\w+])(?:\+\d[\d ()-]{6,}\d|\(?\d{3}\)?[ -]\d{3}[ -]\d{4})(?!\w)"),
    re.compile(r"\b\d{1,4}[./-]\d{1,2}[./-]\d{2,4}\b"),                # dates: 06/10/1980, 1980-10-06
    re.compile(r"\b\d{6,}\b"),                                          # MRN-like digit runs
)


def content_record_id(path: str, key: str) -> str:
    """``r`` + 20 hex characters of HMAC-SHA256(key, SHA-256 of the file); of the path if unreadable."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            remaining = MAX_FILE_BYTES
            while remaining > 0:
                block = fh.read(min(1 << 20, remaining))
                if not block:
                    break
                h.update(block)
                remaining -= len(block)
        material = b"content:" + h.digest()
    except OSError:
        material = b"path:" + os.fsencode(path)
    return "r" + hmac.new(key.encode(), material, hashlib.sha256).hexdigest()[:20]


def path_words(path: str) -> list[str]:
    """The file's and its folders' names (and stems), longest first: what a reason must not quote."""
    parts = [p for p in re.split(r"[\\/]", path) if p]
    words = set()
    for p in parts[-4:]:
        words.add(p)
        words.add(os.path.splitext(p)[0])
    return sorted((w for w in words if len(w) >= 3), key=len, reverse=True)


def scrub_reason(text: str, path: str) -> str:
    """A reason with the path and every name in it removed (``<file>``)."""
    text = text.replace(path, "<file>")
    for word in path_words(path):
        text = text.replace(word, "<file>")
    return text


def _name_pattern(identifiers: Iterable[str | None]) -> re.Pattern[str] | None:
    words = set()
    for ident in identifiers:
        if not ident:
            continue
        ident = ident.strip()
        if len(ident) >= 2:
            words.add(ident)
        words.update(w for w in re.split(r"[\s,^]+", ident) if len(w) >= 2)
    if not words:
        return None
    alternation = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternation})(?!\w)", re.IGNORECASE)


def scrub_names(statements: Sequence[str], names: Iterable[str | None]) -> tuple[list[str], int]:
    """Remove the patient's own names (as the same file gives them) from statements, always.

    Readers call this on every record, pseudonymised or not: a patient's name is never diagnostic
    content, and this way names never leave the reader (a :class:`~ecgkit.record.Record` carries
    none). Returns the statements and the number of names removed.
    """
    pattern = _name_pattern(names)
    if pattern is None:
        return list(statements), 0
    out, n = [], 0
    for s in statements:
        s, k = pattern.subn(REMOVED, s)
        out.append(s)
        n += k
    return out, n


def names_repair(n: int) -> tuple[str, ...]:
    """The repair entry of :func:`scrub_names` (empty when nothing was removed)."""
    return (f"removed the patient's name from statements ({n}x)",) if n else ()


def scrub_statements(statements: Sequence[str], identifiers: Iterable[str | None]) -> tuple[list[str], int]:
    """Replace identifier-like tokens in statements by ``[removed]``.

    Returns
    -------
    (statements, n_removed)
    """
    names = _name_pattern(identifiers)
    out: list[str] = []
    n = 0
    for s in statements:
        if names is not None:
            s, k = names.subn(REMOVED, s)
            n += k
        for pat in _PATTERNS:
            s, k = pat.subn(REMOVED, s)
            n += k
        out.append(s)
    return out, n
