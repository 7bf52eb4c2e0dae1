"""Text normalisation and statement splitting for the label matcher.

A report is cut into *statements* (lines, then sentences); each statement is normalised to lower-case
ASCII words separated by single spaces and padded with one space at each end. Phrases go through
the same normalisation, so a phrase ``" rbbb "`` can only match whole words.
"""
from __future__ import annotations

import re
import unicodedata

# German and Swedish letters fold to their conventional ASCII spelling (vorhofflimmern, förmaksflimmer
# -> foermaksflimmer), both cases; PTB-XL writes upper-case umlauts inside lower-case words (ischÄmie).
_FOLD = str.maketrans({
    "ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "å": "aa", "æ": "ae", "ø": "oe",
    "Ä": "ae", "Ö": "oe", "Ü": "ue", "Å": "aa", "Æ": "ae", "Ø": "oe", "ẞ": "ss",
})
_NON_WORD = re.compile(r"[^a-z0-9]+")
# Commas stay as a token of their own (" , "): they end the reach of a hedge ("possible LVH, RBBB").
# So does a question mark next to a word ("?LVH", "LVH?": a typed hedge), but not one inside a word,
# where it stands for a letter an encoding lost ("unvollst?ndiger").
_TOKEN = re.compile(r"[a-z0-9]+|,|(?<![a-z0-9])\?|\?(?![a-z0-9])")
# "?" or "#" between two letters stands for a letter lost in transcoding (PTB-XL's "f#r" for "für");
# dropping it gives the spelling with the umlaut dropped, which every umlaut phrase also matches.
_LOST_LETTER = re.compile(r"(?<=[a-z])[?#](?=[a-z])")
# UTF-8 text that was decoded as Latin-1/cp1252 ("VorhofflimmernÃ¤") shows these lead bytes.
_MOJIBAKE = re.compile("[\u00c2\u00c3][\u0080-\u00bf]")


def _repair_mojibake(text: str) -> str:
    if not _MOJIBAKE.search(text):
        return text
    for codec in ("cp1252", "latin-1"):
        try:
            return text.encode(codec).decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            continue
    return text


def decode_bytes(raw: bytes) -> str:
    """Decode report bytes: UTF-8 when valid, else cp1252, else Latin-1 (never fails)."""
    for codec in ("utf-8", "cp1252"):
        try:
            return raw.decode(codec)
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1")


def normalize_text(text: str) -> str:
    """Normalise one statement to ``" word word ... "`` (lower-case ASCII, padded with spaces).

    Parameters
    ----------
    text : str
        Any text; umlauts of either case, accents and punctuation are allowed.

    Returns
    -------
    str
        Words of ``[a-z0-9]`` separated by one space, with one leading and one trailing space;
        a comma between two words, and a question mark before or after a word, are kept as
        tokens ``","`` and ``"?"`` of their own (repeated ones count once); ``" "`` for text
        without words.

    Examples
    --------
    >>> normalize_text("Unvollständiger Rechtsschenkelblock, ischÄmie")
    ' unvollstaendiger rechtsschenkelblock , ischaemie '
    """
    if not text.isascii():
        text = _repair_mojibake(text).translate(_FOLD).lower()
        if not text.isascii():
            text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    else:
        text = text.lower()
    if "?" in text or "#" in text:
        text = _LOST_LETTER.sub("", text)
    if "," in text or "?" in text:
        tokens: list[str] = []
        for tok in _TOKEN.findall(text):
            if (tok == "," and not tokens) or (tokens and tok in ",?" and tok == tokens[-1]):
                continue  # a leading comma, or a repeated comma / question mark
            tokens.append(tok)
        if tokens and tokens[-1] == ",":
            tokens.pop()
        words = " ".join(tokens) if any(t not in ",?" for t in tokens) else ""
    else:
        words = _NON_WORD.sub(" ", text).strip()
    return f" {words} " if words else " "


def split_statements(text: str, continuation: frozenset[str] | tuple[str, ...] = (),
                     abbreviations: frozenset[str] = frozenset()) -> list[str]:
    """Cut a report into statement texts with only continuation words and abbreviations (no footers).

    A thin wrapper of :func:`ecgkit.labels.segment.segment_report`, which the labeller calls with
    the vocabulary's full settings (footers, joiners); see there for the rules.
    """
    from ecgkit.labels.segment import Segmenter, segment_report

    seg = Segmenter(continuation=tuple(continuation), abbreviations=frozenset(abbreviations))
    return [s.text for s in segment_report(text, seg)]
