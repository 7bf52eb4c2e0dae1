"""Shared helpers for the XML readers: safe parsing, namespace-agnostic look-ups, number lists.

Every XML dialect ecgkit reads (CardioSoft, HL7 aECG, Philips Sierra) goes through
:func:`parse_xml`, which never resolves entities or touches the network (exports come from
outside; an XML bomb or an external entity must not be expanded), and turns lxml's syntax error
into a :class:`~ecgkit.errors.FormatError` naming the file and the line.

Look-ups use the ``{*}`` wildcard so that the same path works with or without a default
namespace (Philips 1.03 and 1.04 use one, CardioSoft does not, aECG always does).
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
from lxml import etree
from numpy.typing import NDArray

from ecgkit.errors import FormatError, SignalError
from ecgkit.io._limits import MAX_FILE_BYTES, clean_text, read_file


def parse_xml(path: Path, *, record_id: str | None = None) -> etree._Element:
    """Parse an XML file safely and return its root element.

    The parser keeps entities unresolved, never fetches DTDs or external resources, and allows
    large text nodes (``huge_tree``: a full-disclosure waveform is a single multi-megabyte node).

    Raises
    ------
    FormatError
        If the file cannot be read, or is malformed or truncated XML (the message gives the line).
    """
    data = read_file(path, record_id=record_id, max_bytes=MAX_FILE_BYTES)
    if not data.strip():
        raise FormatError("empty file", path=path, record_id=record_id)
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True,
                             remove_comments=True, remove_pis=True)
    try:
        return etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        line = exc.lineno if exc.lineno is not None else "?"
        raise FormatError(f"malformed XML at line {line}: {exc.msg}", path=path, record_id=record_id) from exc


def local_name(element: etree._Element) -> str:
    """Tag name without its namespace (``"{urn:hl7-org:v3}code"`` -> ``"code"``)."""
    tag = element.tag
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def ns_path(path: str) -> str:
    """Turn ``"a/b"`` into the namespace-agnostic ElementPath ``"{*}a/{*}b"`` (``.`` and ``..`` kept)."""
    parts = []
    for part in path.split("/"):
        if part in ("", ".", "..", "*") or part.startswith("{"):
            parts.append(part)
        else:
            parts.append("{*}" + part)
    return "/".join(parts)


def find(element: etree._Element, path: str) -> etree._Element | None:
    """First element matching a slash path of local names (namespace-agnostic), or ``None``."""
    return element.find(ns_path(path))


def findall(element: etree._Element, path: str) -> list[etree._Element]:
    """All elements matching a slash path of local names (namespace-agnostic), in document order."""
    return element.findall(ns_path(path))


def _all_text(element: etree._Element) -> str:
    """Text of an element and its descendants, without unresolved entity references or comments."""
    if len(element) == 0:
        return element.text or ""
    parts = [element.text or ""]
    for node in element.iterdescendants():
        if isinstance(node.tag, str) and node.text:
            parts.append(node.text)
        if node.tail:
            parts.append(node.tail)
    return "".join(parts)


def text(element: etree._Element | None, path: str | None = None, *,
         cleaned: list[str] | None = None) -> str | None:
    """Text of ``element`` (or of its first match of ``path``), cleaned; ``None`` when absent or empty.

    Markup inside the element is removed but its text kept (``<PID><b>P1</b></PID>`` is ``"P1"``),
    entity references the document defines itself are dropped (never expanded), control
    characters removed and whitespace collapsed (:func:`ecgkit.io._limits.clean_text`). When that
    changed the value, ``path`` (or the tag) is appended to ``cleaned``, for the record's repairs.
    """
    if element is not None and path is not None:
        element = find(element, path)
    if element is None:
        return None
    raw = _all_text(element)
    changed = len(element) > 0
    value, more = clean_text(raw)
    if (changed or more) and cleaned is not None:
        cleaned.append(path or local_name(element))
    return value


def parse_number_list(
    raw: str | None,
    *,
    sep: str,
    dtype: type = np.int32,
    what: str,
    path: Path,
    record_id: str | None,
) -> NDArray:
    """Parse a separated list of numbers (``"1,2,-3"`` or ``"1 2\\n-3"``) in one vectorised call.

    Parameters
    ----------
    raw : str or None
        The element text.
    sep : str
        ``","`` or ``" "`` (a space also matches newlines and tabs).
    what : str
        Names the list in error messages, e.g. ``"lead V3"``.

    Raises
    ------
    SignalError
        If the text is missing, empty, or holds something that is not a number.
    """
    body = (raw or "").strip()
    if sep.strip():
        # a trailing separator would otherwise parse as an extra 0 (CardioSoft ends lists with ",")
        body = body.rstrip(sep + " \t\r\n")
    if not body:
        raise SignalError(f"{what} has no samples", path=path, record_id=record_id)
    try:
        return np.fromstring(body, dtype=dtype, sep=sep)
    except ValueError as exc:
        raise SignalError(f"{what} holds a value that is not a number: {exc}", path=path,
                          record_id=record_id) from exc


def hl7_datetime(value: str | None) -> datetime | None:
    """Parse an HL7/DICOM timestamp ``YYYYMMDD[HH[MM[SS[.ffff]]]][+ZZZZ]`` into a naive datetime.

    The time-zone suffix is dropped (``acquired_at`` is local time of the source); ``None`` when
    the value is missing or not a date.
    """
    if not value:
        return None
    value = value.strip()
    for sign in ("+", "-"):
        cut = value.find(sign, 8)
        if cut > 0:
            value = value[:cut]
    frac = ""
    if "." in value:
        value, frac = value.split(".", 1)
    if not value.isdigit() or len(value) < 8:
        return None
    fields = [value[0:4], value[4:6], value[6:8], value[8:10], value[10:12], value[12:14]]
    nums = [int(f) if f else 0 for f in fields]
    micro = int((frac + "000000")[:6]) if frac.isdigit() else 0
    try:
        return datetime(nums[0], nums[1], nums[2], nums[3], nums[4], nums[5], micro)
    except ValueError:
        return None


def age_in_years(birth: datetime | None, at: datetime | None) -> float | None:
    """Completed years between a birth date and an acquisition time (``None`` if either is unknown)."""
    if birth is None or at is None or at < birth:
        return None
    years = at.year - birth.year - ((at.month, at.day) < (birth.month, birth.day))
    return float(years)
