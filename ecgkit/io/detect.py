"""Format detection from a file's name and first bytes (never its whole content)."""
from __future__ import annotations

import re
from pathlib import Path

from ecgkit.errors import FormatError

# Root element of each XML dialect -> format name.
_XML_ROOTS = {
    b"RestingECG": "muse",
    b"CardiologyXML": "cardiosoft",
    b"restingecgdata": "philips",
    b"AnnotatedECG": "aecg",
}
_ROOT_TAG = re.compile(rb"<\s*(?:[A-Za-z_][\w.-]*:)?([A-Za-z_][\w.-]*)[\s>/]")
_SIGNAL_SUFFIXES = {".dat", ".mat", ".xyz", ".atr", ".qrs", ".ecg"}
_HEAD_BYTES = 4096


def _xml_head(head: bytes) -> bytes | None:
    """Return the head decoded to ASCII-compatible bytes if it looks like XML (any of UTF-8/16, Latin-1)."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or (len(head) > 1 and head[1:2] == b"\x00" and head[:1] == b"<"):
        enc = "utf-16-be" if head.startswith(b"\xfe\xff") or head[:1] == b"\x00" else "utf-16-le"
        text = head[: len(head) // 2 * 2].decode(enc, errors="ignore").lstrip("\ufeff")
        head = text.encode("ascii", errors="ignore")
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    return stripped if stripped.startswith(b"<") else None


def _root_element(xml_head: bytes) -> bytes | None:
    pos = 0
    while True:
        m = _ROOT_TAG.search(xml_head, pos)
        if m is None:
            return None
        start = m.start()
        # skip <?xml ...?>, <!DOCTYPE ...>, <!-- ... -->
        if xml_head[start + 1: start + 2] in (b"?", b"!"):
            pos = m.end()
            continue
        return m.group(1)


def detect_format(path: str | Path) -> str:
    """Return the reader name for a file: ``wfdb``, ``muse``, ``cardiosoft``, ``philips``, ``aecg``, ``dicom``.

    Detection looks at the suffix (``.hea`` is WFDB) and the first 4 KiB: the DICOM preamble
    (``DICM`` at offset 128) or the XML root element.

    Raises
    ------
    FormatError
        If the file is empty, is XML of an unknown dialect, or is not a format ecgkit reads.
    """
    path = Path(path)
    if path.suffix.lower() == ".hea":
        return "wfdb"
    try:
        with open(path, "rb") as fh:
            head = fh.read(_HEAD_BYTES)
    except OSError as exc:
        raise FormatError(f"cannot open file: {exc.strerror}", path=path) from exc
    if not head:
        raise FormatError("empty file (0 bytes)", path=path)
    if head[128:132] == b"DICM":
        return "dicom"
    xml = _xml_head(head)
    if xml is not None:
        root = _root_element(xml)
        if root is None:
            raise FormatError("XML without a root element in its first 4 KiB", path=path)
        fmt = _XML_ROOTS.get(root)
        if fmt is None:
            raise FormatError(f"XML root element <{root.decode(errors='replace')}> is not an ECG format "
                              f"ecgkit reads (expected one of {', '.join(r.decode() for r in _XML_ROOTS)})",
                              path=path)
        return fmt
    if path.suffix.lower() in _SIGNAL_SUFFIXES:
        raise FormatError("WFDB signal file without its .hea header", path=path)
    raise FormatError("unknown format: not WFDB, DICOM, or a known ECG XML dialect", path=path)


def is_candidate(path: Path) -> bool:
    """Whether a scan should try this file as a record (headers, XML, DICOM; not signal sidecars)."""
    suffix = path.suffix.lower()
    if suffix in _SIGNAL_SUFFIXES or path.name.startswith("."):
        return False
    return suffix in {".hea", ".xml", ".dcm", ".dicom", ""} or suffix not in {
        ".csv", ".md", ".txt", ".json", ".parquet", ".h5", ".py", ".gz", ".xz", ".tar", ".zip", ".png",
        ".pdf"}
