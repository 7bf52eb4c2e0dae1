"""Format detection by content (magic bytes, the real XML root element), and the scan's skip rules.

Detection reads a file's first bytes, never its whole content. Content decides first; the suffix
only names WFDB headers (text files with no magic of their own) and explains a failure.

Skip rules (:data:`SKIP_SUFFIXES`, :data:`SKIP_NAMES`, :func:`skip_reason`) are written here, in
one place: a file is skipped only when it is known not to be a record (a signal or annotation file
read through its header, a table, a document, an archive, an image). Anything else is a record
candidate: it ends ``ok`` or ``quarantined`` with a reason, never silently skipped.
"""
from __future__ import annotations

import os
import re
import struct
from pathlib import Path

from ecgkit.errors import FormatError

#: Reader names :func:`detect_format` returns.
FORMATS = ("wfdb", "muse", "cardiosoft", "philips", "aecg", "dicom", "scp", "edf", "ishne", "mfer")

# Root element of each XML dialect -> format name.
_XML_ROOTS = {
    b"RestingECG": "muse",
    b"CardiologyXML": "cardiosoft",
    b"restingecgdata": "philips",
    b"AnnotatedECG": "aecg",
}
_NAME = re.compile(rb"(?:[A-Za-z_][\w.\-]*:)?([A-Za-z_][\w.\-]*)")
_HEAD_BYTES = 4096
# Suffixes of binary formats whose reader gives a precise reason when the content check fails (a
# truncated SCP-ECG record, an EDF header with a broken version field, MFER without its preamble).
_SUFFIX_HINTS = {".scp": "scp", ".edf": "edf", ".bdf": "edf", ".rec": "edf", ".mwf": "mfer", ".mfer": "mfer"}
_PROLOG_MAX = 1 << 20  # an XML prolog (comments, DOCTYPE) longer than 1 MiB is not an ECG export

# --- skip rules -----------------------------------------------------------------------------
#: Suffixes that are never records, with what they are (the skipped-files summary counts by it).
SKIP_SUFFIXES: dict[str, str] = {
    ".csv": "CSV table, not an ECG record", ".tsv": "TSV table, not an ECG record",
    **dict.fromkeys((".xls", ".xlsx", ".ods", ".feather"), "spreadsheet or table"),
    ".parquet": "Parquet table", ".md": "documentation", ".txt": "text file", ".pdf": "PDF document",
    **dict.fromkeys((".rst", ".html", ".htm", ".doc", ".docx", ".rtf", ".tex"), "documentation"),
    ".zip": "zip archive: unpack it first", ".tar": "tar archive: unpack it first",
    **dict.fromkeys((".gz", ".xz", ".bz2", ".tgz", ".7z", ".rar", ".zst"), "compressed archive: unpack it first"),
    **dict.fromkeys((".png", ".jpg", ".jpeg", ".gif", ".bmp", ".svg", ".tif", ".tiff", ".webp"), "image"),
    **dict.fromkeys((".py", ".m", ".r", ".sh", ".js", ".c", ".h", ".java", ".cs"), "source code"),
    ".ipynb": "notebook", ".json": "JSON file", ".yaml": "YAML file", ".yml": "YAML file",
    **dict.fromkeys((".toml", ".ini", ".cfg", ".log"), "configuration or log file"),
    ".h5": "HDF5 file", ".hdf5": "HDF5 file",
    **dict.fromkeys((".npy", ".npz", ".pkl", ".pickle", ".pt", ".ckpt"), "array or model file"),
    **dict.fromkeys((".md5", ".sha256", ".sha1"), "checksum file"),
}
#: File names (case-insensitive, any suffix) that are archive indexes, checksums or documents.
SKIP_NAMES: dict[str, str] = {
    **dict.fromkeys(("records", "annotators", "dbs", "contents", "sha256sums", "md5sums", "sha1sums",
                     "index"), "database index or checksum list"),
    **dict.fromkeys(("license", "licence", "readme", "changes", "changelog", "makefile", "copying",
                     "notice"), "documentation or text"),
    "dicomdir": "DICOM directory index (the objects it lists are read themselves)",
    "thumbs.db": "operating-system metadata", "desktop.ini": "operating-system metadata",
}
#: Suffixes of annotation files (WFDB annotators, ISHNE ``.ann``): skipped when a record of the same
#: stem sits beside them, record candidates otherwise.
ANNOTATION_SUFFIXES = frozenset((".atr", ".ann", ".qrs", ".pu", ".pu0", ".pu1", ".apn", ".st", ".stc",
                                 ".ari", ".man", ".hea-", ".xws", ".trigger", ".wabp", ".sqrs", ".ecgpuwave"))
#: WFDB signal-file suffixes seen in PhysioNet databases (read through their header).
WFDB_SIGNAL_SUFFIXES = frozenset((".dat", ".mat", ".xyz"))
#: Suffixes of record formats: a file of one of these beside a WFDB header of the same stem is its
#: own record (a MUSE export and its WFDB conversion), never taken for a WFDB annotator.
RECORD_SUFFIXES = frozenset((".xml", ".dcm", ".dicom", ".scp", ".edf", ".bdf", ".rec", ".mwf", ".mfer"))


def skip_reason(path: str, referenced: set[str], segments: set[str], stems: set[str],
                database_tables: frozenset[str] = frozenset({"ptbxl_database.csv"})) -> str | None:
    """Why a file is not a record candidate, or ``None`` if it is one.

    Parameters
    ----------
    path : str
        The file.
    referenced : set of str
        WFDB headers and the signal files they name.
    segments : set of str
        Segment headers of multi-segment WFDB records (read through the master header).
    stems : set of str
        Paths without suffix of the files that may be records (annotation files excluded), to tell
        an annotation file beside its record from an orphan.
    database_tables : set of str
        Metadata tables the scan joins to records.
    """
    name = os.path.basename(path)
    stem, suffix = os.path.splitext(path)
    suffix = suffix.lower()
    if name.startswith("."):
        return "hidden file"
    if path in segments:
        return "WFDB segment header, read through its multi-segment record's header"
    if name in database_tables:
        return "PTB-XL metadata table, joined to its records"
    if suffix in SKIP_SUFFIXES:
        return SKIP_SUFFIXES[suffix]
    if name.lower() in SKIP_NAMES:
        return SKIP_NAMES[name.lower()]
    if suffix in ("", ".txt", ".md", ".rst", ".html", ".htm") and os.path.splitext(name)[0].lower() in SKIP_NAMES:
        return SKIP_NAMES[os.path.splitext(name)[0].lower()]  # "LICENSE.txt"; a record named "index.xml" stays
    if suffix != ".hea" and path in referenced:
        return "WFDB signal file, read through its .hea header"
    if (suffix != ".hea" and stem + ".hea" in referenced and suffix not in WFDB_SIGNAL_SUFFIXES
            and suffix not in RECORD_SUFFIXES):  # WFDB annotators may have any name (atr, qrs, ecg, 16a...)
        return "WFDB annotation file (not used), read through its .hea header"
    if suffix in ANNOTATION_SUFFIXES and stem in stems:
        return "annotation file beside its record (not used)"
    return None


# --- content detection ----------------------------------------------------------------------
def _xml_text(head: bytes) -> bytes | None:
    """The head as ASCII-compatible bytes if it looks like XML (UTF-8 with or without BOM, UTF-16)."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or (len(head) > 1 and (head[1:2] == b"\x00" and head[:1] == b"<"
                                                                          or head[:2] == b"\x00<")):
        enc = "utf-16-be" if head.startswith(b"\xfe\xff") or head[:1] == b"\x00" else "utf-16-le"
        text = head[: len(head) // 2 * 2].decode(enc, errors="ignore").lstrip("\ufeff")
        head = text.encode("ascii", errors="replace")
    stripped = head[3:] if head.startswith(b"\xef\xbb\xbf") else head
    stripped = stripped.lstrip(b" \t\r\n")
    return stripped if stripped.startswith(b"<") else None


def _skip_doctype(text: bytes, pos: int) -> int:
    """End of a ``<!DOCTYPE ...>`` starting at ``pos`` (an internal subset ``[...]`` may hold ``>``)."""
    i = pos + 9
    depth = 0
    quote = 0
    while i < len(text):
        c = text[i]
        if quote:
            if c == quote:
                quote = 0
        elif c in (0x22, 0x27):
            quote = c
        elif c == 0x5B:  # [
            depth += 1
        elif c == 0x5D:  # ]
            depth -= 1
        elif c == 0x3C and depth and text.startswith(b"<!--", i):
            end = text.find(b"-->", i + 4)
            if end < 0:
                return -1
            i = end + 2
        elif c == 0x3E and depth <= 0:  # >
            return i + 1
        i += 1
    return -1


def xml_root(text: bytes) -> bytes | None:
    """Local name of the root element, skipping the XML declaration, processing instructions,
    comments and the DOCTYPE before it; ``None`` if the prolog does not end within ``text``."""
    pos = 0
    n = len(text)
    while pos < n:
        while pos < n and text[pos] in b" \t\r\n":
            pos += 1
        if pos >= n or text[pos:pos + 1] != b"<":
            return None if pos >= n else b""
        if text.startswith(b"<?", pos):
            end = text.find(b"?>", pos + 2)
            pos = -1 if end < 0 else end + 2
        elif text.startswith(b"<!--", pos):
            end = text.find(b"-->", pos + 4)
            pos = -1 if end < 0 else end + 3
        elif text[pos:pos + 9].upper() == b"<!DOCTYPE":
            pos = _skip_doctype(text, pos)
        else:
            m = _NAME.match(text, pos + 1)
            return m.group(1) if m else b""
        if pos < 0:
            return None
    return None


def _read_head(path: Path) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(_HEAD_BYTES)
    except OSError as exc:
        raise FormatError(f"cannot open file: {exc.strerror}", path=path) from exc


def _xml_format(path: Path, head: bytes) -> str:
    root = xml_root(_xml_text(head) or b"")
    size = _HEAD_BYTES
    while root is None and size < _PROLOG_MAX and len(head) >= size:  # a long comment or DOCTYPE
        size *= 8
        with open(path, "rb") as fh:
            head = fh.read(size)
        root = xml_root(_xml_text(head) or b"")
    if not root:
        raise FormatError("XML without a root element (after its declaration, comments and DOCTYPE)", path=path)
    fmt = _XML_ROOTS.get(root)
    if fmt is None:
        raise FormatError(f"XML root element <{root.decode(errors='replace')}> is not an ECG format "
                          f"ecgkit reads (expected one of {', '.join(r.decode() for r in _XML_ROOTS)})",
                          path=path)
    return fmt


def _is_scp(head: bytes) -> bool:
    """CRC, record size, then section 0's header and its first pointer (to itself, at byte 7)."""
    if len(head) < 32:
        return False
    _crc, _size, sid, length = struct.unpack_from("<HIxxHI", head)
    if sid != 0 or length < 16 + 10:
        return False
    if head[16:22] == b"SCPECG":
        return True
    psid, plen, pidx = struct.unpack_from("<HII", head, 22)
    return psid == 0 and plen == length and pidx == 7


def _is_edf(head: bytes) -> bool:
    if head[:8] == b"\xffBIOSEMI":
        return True
    if head[:8] != b"0       " or len(head) < 256:
        return False
    # start date "dd.mm.yy" and start time "hh.mm.ss" (a broken size field is the reader's to report)
    return head[170:171] == b"." and head[173:174] == b"." and head[178:179] == b"."


def detect_format(path: str | Path) -> str:
    """Return the reader name for a file (one of :data:`FORMATS`).

    Content decides: the DICOM preamble (``DICM`` at offset 128), ``ISHNE1.0``, an MFER preamble
    (``@ MFR``), an EDF/EDF+ (``0`` + spaces) or BDF (``\\xffBIOSEMI``) header, an SCP-ECG record
    (section 0 at byte 7), or the XML root element after the prolog. A ``.hea`` file is a WFDB header
    (checked first: it has no magic, and its reader validates it). When the content matches nothing,
    ``.scp``, ``.edf``/``.bdf``/``.rec`` and ``.mwf`` files go to their reader, which says what is wrong.

    Raises
    ------
    FormatError
        If the file is empty, is XML of an unknown dialect, or is not a format ecgkit reads (the
        message says what the file looks like).
    """
    path = Path(path)
    if path.suffix.lower() == ".hea":
        # WFDB headers are text with no magic of their own (the reader validates them); skipping the
        # open here saves ~45 us per record, ~10% of a PTB-XL record's read on the 2-core box
        return "wfdb"
    head = _read_head(path)
    if not head:
        raise FormatError("empty file (0 bytes)", path=path)
    if head[128:132] == b"DICM":
        return "dicom"
    if head.startswith(b"ISHNE1.0"):
        return "ishne"
    if head.startswith(b"ANN  1.0"):
        raise FormatError("ISHNE annotation file without its Holter recording beside it", path=path)
    if head.startswith(b"@ MFR") or head.startswith(b"@\x20MFR"):
        return "mfer"
    if _is_edf(head):
        return "edf"
    if _is_scp(head):
        return "scp"
    if _xml_text(head) is not None:
        return _xml_format(path, head)
    suffix = path.suffix.lower()
    if suffix in _SUFFIX_HINTS:  # content said nothing: the format's reader names what is wrong
        return _SUFFIX_HINTS[suffix]
    if suffix in WFDB_SIGNAL_SUFFIXES:
        raise FormatError("WFDB signal file without its .hea header", path=path)
    if suffix in ANNOTATION_SUFFIXES:
        raise FormatError(f"annotation file ({suffix}) without a record of the same name beside it", path=path)
    if b"\x00" not in head[:512]:
        raise FormatError("unknown format: a text file that is not a WFDB header (.hea) or ECG XML", path=path)
    raise FormatError(f"unknown format: a binary file (first bytes {head[:8].hex(' ')}) that is not DICOM, "
                      f"SCP-ECG, EDF/BDF, "
                      f"ISHNE, MFER or a WFDB signal with its header", path=path)
