"""A per-user cache of compiled vocabularies, so that a process loads one in a fraction of a second.

Compiling the shipped vocabulary (macro expansion, umlaut variants, generated word orders and
coordinations, one-edit misspellings, two automata) takes a few CPU seconds, paid again by every
process of ``ecgkit label --workers N``. The result is stored once per vocabulary file content and
compiler version, as a pickle keyed by the SHA-256 of the file's bytes, of this package's compiler
sources and of the Python and pyahocorasick versions, in ``$ECGKIT_CACHE_DIR`` (default
``$XDG_CACHE_HOME/ecgkit`` or ``~/.cache/ecgkit``). ``ECGKIT_CACHE_DIR=""`` turns it off.

Safety: pickles run code when loaded, so a cache file is read only when it and its folder belong to
the current user and nobody else may write to them (the folder is created with mode 0700), and it
is opened without following a symbolic link. Files are written to a temporary name and renamed, so
a reader never sees half a file. Any problem (unreadable, foreign, stale, corrupt) means the
vocabulary is compiled as if there were no cache.
"""
from __future__ import annotations

import hashlib
import logging
import os
import pickle
import stat
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

logger = logging.getLogger(__name__)

_FORMAT = 1
_KEEP = 4  # cache files kept
_SOURCES = ("vocab.py", "forms.py", "normalize.py", "segment.py", "compiled.py", "cache.py", "matcher.py")


def cache_dir() -> Path | None:
    """Where compiled vocabularies are kept; None when caching is turned off."""
    env = os.environ.get("ECGKIT_CACHE_DIR")
    if env is not None:
        return Path(env).expanduser() / "vocab" if env.strip() else None
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ecgkit" / "vocab"


def _key(path: str, raw: bytes) -> str:
    h = hashlib.sha256()
    h.update(f"{_FORMAT}|{sys.version}|{path}|".encode())
    try:
        h.update(metadata.version("pyahocorasick").encode())
    except metadata.PackageNotFoundError:
        h.update(b"?")
    here = Path(__file__).resolve().parent
    for name in _SOURCES:
        h.update((here / name).read_bytes())
    h.update(raw)
    return h.hexdigest()


def _private(st: os.stat_result) -> bool:
    uid = os.getuid() if hasattr(os, "getuid") else None
    return (uid is None or st.st_uid == uid) and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _read(file: Path) -> Any:
    if not _private(os.stat(file.parent)):
        raise PermissionError(f"{file.parent} is not private to this user")
    fd = os.open(file, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode) or not _private(st):
            raise PermissionError(f"{file} is not a private regular file")
        return pickle.load(fh)  # noqa: S301 - our own file, checked above


def _write(folder: Path, file: Path, obj: Any) -> None:
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not _private(os.stat(folder)):
        raise PermissionError(f"{folder} is not private to this user")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".pkl")
    try:
        with os.fdopen(fd, "wb") as fh:
            pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, file)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    # keep the newest few (other vocabulary files or versions); each is tens of MB
    old = sorted(folder.glob("*.pkl"), key=lambda p: p.stat().st_mtime, reverse=True)[_KEEP:]
    for p in old:
        p.unlink(missing_ok=True)


def cached(path: str, raw: bytes, build: Callable[[], Any], pack: Callable[[Any], Any],
           unpack: Callable[[Any], Any]) -> Any:
    """``unpack`` of the cached ``pack(build())`` for this file content, building (and storing) it when
    there is none."""
    folder = cache_dir()
    if folder is None:
        return build()
    try:
        key = _key(path, raw)
    except OSError as exc:
        logger.debug("vocabulary cache off: %s", exc)
        return build()
    file = folder / f"{key}.pkl"
    if file.exists():
        try:
            return unpack(_read(file))
        except Exception as exc:  # noqa: BLE001 - any bad cache file means: compile afresh
            logger.debug("vocabulary cache %s not used: %s", file, exc)
    obj = build()
    try:
        _write(folder, file, pack(obj))
    except Exception as exc:  # noqa: BLE001 - a read-only home must not stop labelling
        logger.debug("vocabulary cache %s not written: %s", file, exc)
    return obj


def cached_vocabulary(path: str, raw: bytes, build: Callable[[], Any]) -> Any:
    """The compiled vocabulary of ``path`` (whose bytes are ``raw``), with its compiled-pass tables."""
    return cached(path, raw, build, _pack, _unpack)


def _pack(vocab: Any) -> Any:
    from dataclasses import fields, replace

    from ecgkit.labels.compiled import tables

    tab = tables(vocab)
    findings: dict[Any, int] = {}
    cues: dict[Any, int] = {}
    entries = []
    for key, e in vocab.automaton.items():
        f = -1 if e.finding is None else findings.setdefault(e.finding, len(findings))
        entries.append((key, f, tuple(cues.setdefault(c, len(cues)) for c in e.cues), e.tail, e.generated))
    rebuilt = ("automaton", "segmenter", "fuzzy")
    meta = {f.name: getattr(vocab, f.name) for f in fields(vocab) if f.name not in rebuilt}
    return (_FORMAT, meta, [(f.labels, f.kind, f.requires, f.forbids) for f in findings],
            [(c.rule, c.side, c.labels, c.stops) for c in cues], entries, vocab.fuzzy,
            replace(vocab.segmenter, automaton=None), tab)


def _unpack(obj: Any) -> Any:
    from dataclasses import replace

    import ahocorasick

    from ecgkit.labels import compiled
    from ecgkit.labels.vocab import Cue, Entry, Finding, Vocabulary

    fmt, meta, findings, cues, entries, fuzzy, segmenter, tab = obj
    if fmt != _FORMAT:
        raise ValueError(f"cache format {fmt}, expected {_FORMAT}")
    f_objs = [Finding(*f) for f in findings]
    c_objs = [Cue(*c) for c in cues]
    ac = ahocorasick.Automaton()
    for key, f, cs, tail, generated in entries:
        ac.add_word(key, Entry(key, None if f < 0 else f_objs[f], tuple(c_objs[c] for c in cs), tail, generated))
    ac.make_automaton()
    vocab = Vocabulary(**meta, automaton=ac, segmenter=replace(segmenter, automaton=ac), fuzzy=fuzzy)
    compiled.register(vocab, tab)
    return vocab
