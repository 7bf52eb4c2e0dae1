"""A hostile test corpus made from the real fixtures (test helper for ``tests/test_hostile_corpus.py``).

Every variant is a small folder holding one damaged or hostile copy of a real file (with its WFDB
sidecars), plus what a correct scan must do with it:

``expect="quarantine"``  the record cannot be a valid surface ECG (an impossible rate, a negative
                         gain, a signal file outside the record's folder, ...): ok is *silently wrong*
``expect="ok"``          a legal file in an odd shape (odd name, UTF-16, entities): quarantine is
                         acceptable only with a reason, but the scan must not crash
``expect="any"``         random damage (truncations, bit flips, random bytes): ok or quarantined
``expect="skip"``        not a regular file (FIFO, socket, device, symlink loop): skipped, never opened

Kinds follow the audit: truncation, bitflip, random, encoding, absurd, entity, xxe, nesting, blob,
symlink, fifo, name. :func:`run_variant` scans one variant through the CLI path (scan, write
manifest, quarantine, skipped list, summary) with an alarm against hangs and classifies the outcome.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

#: Marker planted in files outside the scanned tree: it must never appear in any output.
OUTSIDE_MARKER = b"OUTSIDE-SECRET-7f3a9c"


@dataclass
class Variant:
    name: str
    kind: str
    folder: Path
    expect: str  # quarantine | ok | any | skip
    base_fs: float | None = None
    notes: str = ""
    extra_sources: list[Path] = field(default_factory=list)


class Hang(BaseException):
    """Raised by the alarm: not an Exception, so no catch-all in ecgkit can swallow it."""


def _ptbxl_record(shared: Path, dest: Path) -> Path:
    """Extract PTB-XL record 00001_hr (.hea, .dat) from the fixture tarball into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    want = {"records500/00000/00001_hr.hea", "records500/00000/00001_hr.dat"}
    with tarfile.open(shared / "ptbxl" / "records500.tar.xz") as tar:
        for m in tar:
            if m.name in want:
                (dest / Path(m.name).name).write_bytes(tar.extractfile(m).read())  # type: ignore[union-attr]
                want.discard(m.name)
                if not want:
                    break
    return dest / "00001_hr.hea"


class _Builder:
    def __init__(self, root: Path):
        self.root = root
        self.variants: list[Variant] = []
        self.n = 0

    def folder(self, name: str) -> Path:
        self.n += 1
        d = self.root / f"v{self.n:03d}-{re.sub(r'[^A-Za-z0-9_.-]', '_', name)[:60]}"
        d.mkdir(parents=True)
        return d

    def add(self, name: str, kind: str, files: dict[str, bytes], expect: str, base_fs: float | None = None,
            notes: str = "") -> Path:
        d = self.folder(name)
        for fname, data in files.items():
            (d / fname).write_bytes(data)
        self.variants.append(Variant(name, kind, d, expect, base_fs, notes))
        return d


def _bytewise(b: _Builder, label: str, main: str, files: dict[str, bytes], base_fs: float,
              damaged: str | None = None) -> None:
    """Truncations, bit flips and random bytes of one file of a record (``damaged``, default the main file)."""
    target = damaged or main
    data = files[target]
    rng = np.random.default_rng(abs(hash(label)) % 2**32)
    for frac in (0.0, 0.01, 0.5, 0.97):
        cut = int(len(data) * frac)
        b.add(f"{label}-trunc{frac}-{target}", "truncation", {**files, target: data[:cut]}, "any", base_fs)
    b.add(f"{label}-trunc-1-{target}", "truncation", {**files, target: data[:-1]}, "any", base_fs)
    for seed in range(4):
        arr = bytearray(data)
        r = np.random.default_rng(seed + 1000 * len(label))
        for pos in r.integers(0, len(arr), size=8):
            arr[int(pos)] ^= 1 << int(r.integers(0, 8))
        b.add(f"{label}-bitflip{seed}-{target}", "bitflip", {**files, target: bytes(arr)}, "any", base_fs)
    b.add(f"{label}-random-{target}", "random", {**files, target: rng.bytes(len(data))}, "any", base_fs)
    b.add(f"{label}-random64k-{target}", "random", {**files, target: rng.bytes(65536)}, "any", base_fs)


def _sub(data: bytes, pattern: bytes, repl: bytes, count: int = 1) -> bytes:
    out, n = re.subn(pattern, repl, data, count=count)
    if n == 0:
        raise AssertionError(f"corpus: pattern {pattern!r} not found")
    return out


def build_corpus(shared: Path, root: Path) -> list[Variant]:
    """Write every variant under ``root`` (a fresh folder) and return them."""
    b = _Builder(root / "corpus")
    outside = root / "outside"
    outside.mkdir(parents=True)
    secret = outside / "secret.dat"
    # exactly the size a 12-lead, 5000-sample format-16 header promises: a size check alone cannot refuse it
    secret.write_bytes((OUTSIDE_MARKER * 6000)[:120000])
    (outside / "secret.hea").write_bytes(b"# " + OUTSIDE_MARKER + b"\nsecret 12 500 5000\n")
    ptb = _ptbxl_record(shared, root / "ptbxl-src")
    hea = ptb.read_bytes()
    dat = ptb.with_suffix(".dat").read_bytes()
    wf = {"00001_hr.hea": hea, "00001_hr.dat": dat}

    # --- WFDB (PTB-XL, format 16 fast path) ---------------------------------------------------
    _bytewise(b, "ptbxl", "00001_hr.hea", wf, 500.0)
    _bytewise(b, "ptbxl", "00001_hr.hea", wf, 500.0, damaged="00001_hr.dat")
    rec_line = hea.split(b"\n", 1)[0]
    for fs in (b"0", b"-500", b"nan", b"inf", b"1e308", b"abc", b"1e-9", b"5e6"):
        b.add(f"ptbxl-fs-{fs.decode()}", "absurd", {**wf, "00001_hr.hea": hea.replace(rec_line,
              b"00001_hr 12 " + fs + b" 5000", 1)}, "quarantine", 500.0)
    for ns in (b"0", b"1000000000000"):
        b.add(f"ptbxl-nsamp-{ns.decode()}", "absurd", {**wf, "00001_hr.hea": hea.replace(rec_line,
              b"00001_hr 12 500 " + ns, 1)}, "quarantine", 500.0)
    b.add("ptbxl-nsig-100000", "absurd", {**wf, "00001_hr.hea": hea.replace(rec_line, b"00001_hr 100000 500 5000", 1)},
          "quarantine", 500.0)
    b.add("ptbxl-gain-negative", "absurd", {**wf, "00001_hr.hea": hea.replace(b"1000.0(0)/mV", b"-1000.0(0)/mV")},
          "quarantine", 500.0)
    b.add("ptbxl-gain-nan", "absurd", {**wf, "00001_hr.hea": hea.replace(b"1000.0(0)/mV", b"nan(0)/mV")},
          "quarantine", 500.0)
    b.add("ptbxl-checksum", "bitflip", {**wf, "00001_hr.dat": dat[:1000] + bytes([dat[1000] ^ 0x10]) + dat[1001:]},
          "any", 500.0, notes="one sample changed: the header checksum must flag it")
    # signal file outside the record's folder
    for target in (b"../../outside/secret.dat", str(secret).encode(), b"/etc/passwd", b"/dev/zero"):
        b.add(f"ptbxl-sigfile-{target.decode()}", "symlink", {"00001_hr.hea": hea.replace(b"00001_hr.dat", target)},
              "quarantine", 500.0, notes="signal file outside the record folder")
    d = b.add("ptbxl-sigfile-symlink-out", "symlink", {"00001_hr.hea": hea}, "quarantine", 500.0)
    os.symlink(secret, d / "00001_hr.dat")
    d = b.add("ptbxl-header-symlink-out", "symlink", {"00001_hr.dat": dat}, "quarantine", 500.0)
    os.symlink(outside / "secret.hea", d / "00001_hr.hea")
    d = b.add("ptbxl-symlink-inside", "symlink", {"00001_hr.hea": hea, "payload.csv": dat}, "ok", 500.0,
              notes="a signal file that is a symlink inside the scanned tree is allowed")
    os.symlink("payload.csv", d / "00001_hr.dat")
    # header that is really another file (content must not be echoed)
    b.add("ptbxl-header-is-other-file", "random", {"00001_hr.hea": b"root:x:0:0:" + OUTSIDE_MARKER + b":/root:/bin/sh\n",
          "00001_hr.dat": dat}, "quarantine", 500.0)
    b.add("ptbxl-header-utf16", "encoding", {**wf, "00001_hr.hea": hea.decode().encode("utf-16")}, "any", 500.0)
    b.add("ptbxl-header-latin1-comment", "encoding", {**wf, "00001_hr.hea": hea + b"# Statement: Sinusrhythmus \xe4\n"},
          "any", 500.0)
    b.add("ptbxl-header-crlf", "encoding", {**wf, "00001_hr.hea": hea.replace(b"\n", b"\r\n")}, "ok", 500.0)
    b.add("ptbxl-blob-comment", "blob", {**wf, "00001_hr.hea": hea + b"# " + b"A" * 3_000_000 + b"\n"}, "any", 500.0)
    b.add("ptbxl-blob-patient", "blob", {**wf, "00001_hr.hea": hea + b"# Patient: " + b"7" * 2_000_000 + b"\n"},
          "quarantine", 500.0)
    b.add("ptbxl-multiseg-escape", "symlink", {"m.hea": b"m/2 12 500 10000\n../../outside/secret 5000\n00001_hr 5000\n",
          **wf}, "quarantine", 500.0)

    # --- WFDB Challenge .mat, PTB Diagnostic (.dat + .xyz), MIT-BIH format 212 ------------------
    cinc = shared / "cinc2021"
    cf = {"E07500.hea": (cinc / "E07500.hea").read_bytes(), "E07500.mat": (cinc / "E07500.mat").read_bytes()}
    _bytewise(b, "cinc", "E07500.hea", cf, 500.0, damaged="E07500.mat")
    ps = shared / "physionet-samples"
    sf = {n: (ps / n).read_bytes() for n in ("s0010_re.hea", "s0010_re.dat", "s0010_re.xyz")}
    _bytewise(b, "ptbdiag", "s0010_re.hea", sf, 1000.0)
    mf = {n: (ps / n).read_bytes()[:36000] if n.endswith(".dat") else (ps / n).read_bytes()
          for n in ("100.hea", "100.dat")}
    mf["100.hea"] = mf["100.hea"].replace(b"650000", b"24000")
    _bytewise(b, "mitbih212", "100.hea", mf, 360.0, damaged="100.dat")
    b.add("mitbih212-nsamp-huge", "absurd", {**mf, "100.hea": mf["100.hea"].replace(b"24000", b"999999999999")},
          "quarantine", 360.0)

    # --- GE MUSE ------------------------------------------------------------------------------
    muse_path = shared / "muse" / "MUSE_20200923_093504_79000_example.xml"
    muse = muse_path.read_bytes()
    mn = muse_path.name
    _bytewise(b, "muse", mn, {mn: muse}, 500.0)
    rhythm = muse.index(b"<WaveformType>Rhythm</WaveformType>")

    def muse_rhythm(pat: bytes, repl: bytes) -> bytes:
        return muse[:rhythm] + _sub(muse[rhythm:], pat, repl)

    for base, exp in ((b"0", b"0"), (b"-500", b"0"), (b"nan", b"0"), (b"500", b"400"), (b"500", b"99999999"),
                      (b"abc", b"0"), (b"1e308", b"10")):
        v = muse_rhythm(rb"<SampleBase>500</SampleBase>", b"<SampleBase>" + base + b"</SampleBase>")
        v = v[:rhythm] + _sub(v[rhythm:], rb"<SampleExponent>0</SampleExponent>",
                              b"<SampleExponent>" + exp + b"</SampleExponent>")
        b.add(f"muse-rate-{base.decode()}e{exp.decode()}", "absurd", {mn: v}, "quarantine", 500.0)
    b.add("muse-upb-negative", "absurd", {mn: muse_rhythm(rb"<LeadAmplitudeUnitsPerBit>4.88</LeadAmplitudeUnitsPerBit>",
          b"<LeadAmplitudeUnitsPerBit>-4.88</LeadAmplitudeUnitsPerBit>")}, "quarantine", 500.0)
    b.add("muse-crc32", "bitflip", {mn: muse_rhythm(rb"<LeadDataCRC32>\d+</LeadDataCRC32>",
          b"<LeadDataCRC32>12345</LeadDataCRC32>")}, "any", 500.0, notes="CRC mismatch: QC flag")
    b.add("muse-pid-entity", "entity", {mn: muse.replace(b"<PatientID>201700237</PatientID>",
          b"<PatientID>2017&#x41;00237</PatientID>")}, "ok", 500.0)
    b.add("muse-pid-markup", "entity", {mn: muse.replace(b"<PatientID>201700237</PatientID>",
          b"<PatientID><b>201700237</b></PatientID>")}, "ok", 500.0)
    b.add("muse-pid-control", "entity", {mn: muse.replace(b"<PatientID>201700237</PatientID>",
          b"<PatientID>2017\x0100237&#1;</PatientID>")}, "ok", 500.0)
    b.add("muse-stmt-markup", "entity", {mn: _sub(muse, rb"<StmtText>", b"<StmtText><i>AF</i> &amp; ")}, "ok", 500.0)
    b.add("muse-pid-blob", "blob", {mn: muse.replace(b"<PatientID>201700237</PatientID>",
          b"<PatientID>" + b"9" * 3_000_000 + b"</PatientID>")}, "quarantine", 500.0)
    b.add("muse-utf16", "encoding", {mn: muse.decode("latin-1").replace('encoding="ISO-8859-1"', 'encoding="UTF-16"')
          .encode("utf-16")}, "ok", 500.0)
    b.add("muse-utf8-declared-latin1", "encoding", {mn: muse.replace(b"<PatientID>201700237</PatientID>",
          b"<PatientID>201700237</PatientID><PatientLastName>M\xc3\xbcller</PatientLastName>")}, "ok", 500.0)
    b.add("muse-billion-laughs", "entity", {mn: muse.replace(b'<!DOCTYPE RestingECG SYSTEM "restecg.dtd">',
          _laughs(b"RestingECG")).replace(b"<PatientID>201700237", b"<PatientID>201700237&lol9;")}, "any", 500.0)
    b.add("muse-xxe", "xxe", {mn: muse.replace(b'<!DOCTYPE RestingECG SYSTEM "restecg.dtd">',
          b'<!DOCTYPE RestingECG [<!ENTITY xxe SYSTEM "file://' + str(secret).encode() + b'">]>')
          .replace(b"<PatientID>201700237", b"<PatientID>201700237&xxe;")}, "any", 500.0)
    b.add("muse-deep-nesting", "nesting", {mn: muse.replace(b"<PatientAge>", b"<a>" * 100000 + b"</a>" * 100000
          + b"<PatientAge>")}, "any", 500.0)

    # --- lxml dialects: CardioSoft, aECG, Philips ------------------------------------------------
    cs_path = shared / "ge-cardiosoft" / "example-XML1.xml"
    cs = cs_path.read_bytes()
    cn = cs_path.name
    _bytewise(b, "cardiosoft", cn, {cn: cs}, 500.0)
    strip = cs.index(b"<StripData>")

    def cs_strip(pat: bytes, repl: bytes) -> bytes:
        return cs[:strip] + _sub(cs[strip:], pat, repl)

    for fs in (b"0", b"-500", b"nan", b"abc", b"1e309", b"inf"):
        b.add(f"cardiosoft-fs-{fs.decode()}", "absurd", {cn: cs_strip(rb'<SampleRate units="Hz">500</SampleRate>',
              b'<SampleRate units="Hz">' + fs + b"</SampleRate>")}, "quarantine", 500.0)
    for res in (b"-5", b"0", b"nan"):
        b.add(f"cardiosoft-res-{res.decode()}", "absurd", {cn: cs_strip(rb'<Resolution units="uVperLsb">5</Resolution>',
              b'<Resolution units="uVperLsb">' + res + b"</Resolution>")}, "quarantine", 500.0)
    _xml_attacks(b, "cardiosoft", cn, cs, b"CardiologyXML", rb"<PID>1532006361</PID>", b"<PID>", b"</PID>", secret)

    ae_path = shared / "hl7-aecg" / "subject1_0.xml"
    ae = ae_path.read_bytes()
    an = ae_path.name
    _bytewise(b, "aecg", an, {an: ae}, 500.0)
    for inc in (b"0", b"-0.002", b"nan", b"1e-300"):
        b.add(f"aecg-increment-{inc.decode()}", "absurd", {an: _sub(ae, rb'<increment value="0.002" unit="s"/>',
              b'<increment value="' + inc + b'" unit="s"/>')}, "quarantine", 500.0)
    b.add("aecg-scale-negative", "absurd", {an: ae.replace(b'<scale value="2.5" unit="uV"/>',
          b'<scale value="-2.5" unit="uV"/>')}, "quarantine", 500.0)
    _xml_attacks(b, "aecg", an, ae, b"AnnotatedECG", rb'extension="subject1"', b'extension="', b'"', secret,
                 attribute=True)

    ph_path = shared / "philips" / "129DYPRG.XML"
    ph = ph_path.read_bytes()
    pn = ph_path.name
    _bytewise(b, "philips", pn, {pn: ph}, 500.0)
    for fs in (b"0", b"-500", b"nan", b"1e12"):
        b.add(f"philips-fs-{fs.decode()}", "absurd", {pn: _sub(ph, rb"<samplingrate>500</samplingrate>",
              b"<samplingrate>" + fs + b"</samplingrate>")}, "quarantine", 500.0)
    b.add("philips-res-negative", "absurd", {pn: _sub(ph, rb"<signalresolution>5</signalresolution>",
          b"<signalresolution>-5</signalresolution>")}, "quarantine", 500.0)
    b.add("philips-duration-huge", "absurd", {pn: _sub(ph, rb'durationperchannel="11000"',
          b'durationperchannel="1000000000000"')}, "quarantine", 500.0)
    _xml_attacks(b, "philips", pn, ph, b"restingecgdata", rb"<patientid>[^<]*</patientid>", b"<patientid>",
                 b"</patientid>", secret)
    for other in ("2020-5-18_15-48-11.xml", "ad4d3d80-d165_1-04_orig.xml"):
        data = (shared / "philips" / other).read_bytes()
        _bytewise(b, "philips16-" + other[:8], other, {other: data}, 500.0)

    # --- DICOM --------------------------------------------------------------------------------
    for dn in ("example-DICOM1.dcm", "example-DICOM2.dcm"):
        _bytewise(b, dn[:-4], dn, {dn: (shared / "dicom" / dn).read_bytes()}, 500.0)
    _dicom_variants(b, shared / "dicom" / "example-DICOM1.dcm")

    # --- file-system shapes ---------------------------------------------------------------------
    d = b.folder("fifo")
    os.mkfifo(d / "record.xml")
    os.mkfifo(d / "record.hea")
    b.variants.append(Variant("fifo", "fifo", d, "skip"))
    d = b.folder("socket")
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(d / "sock.xml"))
    s.close()
    b.variants.append(Variant("socket", "fifo", d, "skip"))
    d = b.folder("device-symlinks")
    os.symlink("/dev/zero", d / "zero.hea")
    os.symlink("/dev/urandom", d / "urandom.xml")
    b.variants.append(Variant("device-symlinks", "fifo", d, "skip"))
    d = b.folder("symlink-loop")
    os.symlink(".", d / "loop")
    os.symlink("b", d / "a")
    os.symlink("a", d / "b.xml")
    os.symlink("b.xml", d / "b")
    (d / mn).write_bytes(muse)
    b.variants.append(Variant("symlink-loop", "symlink", d, "ok", 500.0, notes="one real MUSE file beside loops"))
    d = b.folder("dir-symlink-out")
    os.symlink(outside, d / "elsewhere")
    b.variants.append(Variant("dir-symlink-out", "symlink", d, "skip"))
    for label, fname in (("nonutf8", b"caf\xe9-\xff.xml"), ("newline", b"a\nb.xml"), ("dash", b"-rf.xml"),
                         ("long", b"x" * 240 + b".xml"), ("nfd", "Mu\u0308ller.xml".encode()),
                         ("backslash", b"a\\x41.xml")):
        d = b.folder("name-" + label)
        with open(os.path.join(os.fsencode(d), fname), "wb") as fh:
            fh.write(muse)
        b.variants.append(Variant("name-" + label, "name", d, "ok", 500.0))
    d = b.folder("name-nonutf8-wfdb")
    (d / "x").mkdir()
    sub = os.path.join(os.fsencode(d), b"x", b"r\xe9c")
    os.mkdir(sub)
    with open(os.path.join(sub, b"00001_hr.hea"), "wb") as fh:
        fh.write(hea)
    with open(os.path.join(sub, b"00001_hr.dat"), "wb") as fh:
        fh.write(dat)
    b.variants.append(Variant("name-nonutf8-wfdb", "name", d, "ok", 500.0))
    return b.variants


def _laughs(root: bytes) -> bytes:
    ents = [b'<!ENTITY lol0 "lol">']
    for i in range(1, 10):
        ents.append(b"<!ENTITY lol%d \"" % i + (b"&lol%d;" % (i - 1)) * 10 + b'">')
    return b"<!DOCTYPE " + root + b" [" + b"".join(ents) + b"]>"


def _xml_attacks(b: _Builder, label: str, name: str, data: bytes, root: bytes, pid_pat: bytes, open_: bytes,
                 close: bytes, secret: Path, *, attribute: bool = False) -> None:
    """Entity expansion, external entity, deep nesting, a large id, markup and control characters."""
    decl_end = data.index(b"?>") + 2 if data.startswith(b"<?xml") else 0
    head, body = data[:decl_end], data[decl_end:]

    def with_doctype(doctype: bytes, pid: bytes) -> bytes:
        return head + doctype + _sub(body, pid_pat, open_ + pid + close)

    b.add(f"{label}-billion-laughs", "entity", {name: with_doctype(_laughs(root), b"P1&lol9;")}, "any", 500.0)
    b.add(f"{label}-xxe", "xxe", {name: with_doctype(b"<!DOCTYPE " + root + b' [<!ENTITY xxe SYSTEM "file://'
          + str(secret).encode() + b'">]>', b"P1&xxe;")}, "any", 500.0)
    b.add(f"{label}-pid-blob", "blob", {name: with_doctype(b"", b"8" * 3_000_000)}, "quarantine", 500.0)
    if not attribute:
        b.add(f"{label}-pid-entity", "entity", {name: with_doctype(b"", b"P&#x41;1&amp;2")}, "ok", 500.0)
        b.add(f"{label}-pid-markup", "entity", {name: with_doctype(b"", b"<b>P1</b>")}, "ok", 500.0)
        b.add(f"{label}-pid-control", "entity", {name: with_doctype(b"", b"P&#x1;1")}, "any", 500.0)
        b.add(f"{label}-deep-nesting", "nesting", {name: with_doctype(b"", b"P1" + b"<a>" * 100000 + b"</a>" * 100000)},
              "any", 500.0)


def _dicom_variants(b: _Builder, path: Path) -> None:
    import io

    import pydicom

    def dump(ds: "pydicom.Dataset") -> bytes:
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=False)
        return buf.getvalue()

    def variant(label: str, expect: str, change: Callable[["pydicom.Dataset"], None]) -> None:
        ds = pydicom.dcmread(path)
        change(ds)
        b.add(f"dicom-{label}", "absurd", {path.name: dump(ds)}, expect, 500.0)

    def group(ds: "pydicom.Dataset") -> "pydicom.Dataset":
        return ds.WaveformSequence[0]

    variant("fs-0", "quarantine", lambda ds: setattr(group(ds), "SamplingFrequency", 0))
    variant("fs-negative", "quarantine", lambda ds: setattr(group(ds), "SamplingFrequency", -500))
    variant("fs-huge", "quarantine", lambda ds: setattr(group(ds), "SamplingFrequency", 1e300))
    variant("samples-huge", "quarantine", lambda ds: setattr(group(ds), "NumberOfWaveformSamples", 2**31))
    variant("samples-0", "quarantine", lambda ds: setattr(group(ds), "NumberOfWaveformSamples", 0))
    for value in (0, -1.0):
        def sens(ds: "pydicom.Dataset", value: float = value) -> None:
            for ch in group(ds).ChannelDefinitionSequence:
                ch.ChannelSensitivity = value
        variant(f"sensitivity-{value}", "quarantine", sens)
    variant("pid-blob", "quarantine", lambda ds: setattr(ds, "PatientID", "7" * 2_000_000))
    raw = path.read_bytes()
    # a 4 GB length field: the PatientID element's length (explicit VR little endian: tag, VR, 2-byte len) -> an
    # OB-like 4-byte length claim is out of reach, so set a 0xFFFF length on a short element instead
    i = raw.find(b"\x10\x00\x20\x00LO")
    if i >= 0:
        b.add("dicom-length-ffff", "absurd", {path.name: raw[:i + 6] + b"\xff\xff" + raw[i + 8:]}, "any", 500.0)
    i = raw.find(b"\x00\x54\x10\x10")  # (5400,1010) WaveformData: OB/OW with a 4-byte length
    if i >= 0:
        b.add("dicom-waveform-4gb", "absurd", {path.name: raw[:i + 8] + b"\xf0\xff\xff\xff" + raw[i + 12:]},
              "any", 500.0)


@dataclass
class Outcome:
    variant: Variant
    status: str  # ok | quarantined | skipped | crashed | hung
    silently_wrong: bool
    detail: str


def run_variant(v: Variant, out: Path, *, timeout_s: int = 20) -> Outcome:
    """Scan one variant the way ``ecgkit scan`` does and classify the outcome."""
    from click.testing import CliRunner

    from ecgkit.cli import main

    def _alarm(signum: int, frame: object) -> None:
        raise Hang()

    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(timeout_s)
    try:
        result = CliRunner().invoke(main, ["scan", str(v.folder), "--out", str(out), "--workers", "1"])
    except Hang:
        return Outcome(v, "hung", False, f"no answer in {timeout_s} s")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        exc = result.exception
        return Outcome(v, "crashed", False, f"{type(exc).__name__}: {str(exc)[:200]}")
    import pandas as pd

    manifest = out / "manifest.parquet"
    if not manifest.exists() and result.exit_code == 4 and "Error: no ECG record found in" in result.output:
        # a scan that found no record is an error by design (issue 10): one line, exit 4, nothing written
        return Outcome(v, "skipped", False, result.output.strip().splitlines()[-1][:200])
    if not manifest.exists():
        return Outcome(v, "crashed", False, f"exit {result.exit_code}, no manifest: {result.output[-300:]}")
    df = pd.read_parquet(manifest)
    leaked = any(OUTSIDE_MARKER in p.read_bytes() for p in out.rglob("*") if p.is_file())
    if len(df) == 0:
        status = "skipped"
    elif (df["status"] == "ok").all():
        status = "ok"
    else:
        status = "quarantined"
    wrong = leaked
    detail = "outside content in the outputs" if leaked else ""
    if v.expect == "quarantine" and status == "ok":
        wrong, detail = True, f"accepted as ok: fs={df['fs'].tolist()}"
    if v.expect == "skip" and status not in ("skipped",):
        wrong, detail = True, f"{len(df)} record(s) from a non-regular file"
    if status == "ok" and v.base_fs is not None and not np.allclose(df["fs"].to_numpy(dtype=float), v.base_fs):
        wrong, detail = True, f"rate changed silently: {df['fs'].tolist()} (source {v.base_fs})"
    if status == "quarantined" and not wrong:
        reasons = df.loc[df["status"] != "ok", "reason"]
        if reasons.isna().any():
            wrong, detail = True, "quarantined without a reason"
        else:
            detail = str(reasons.iloc[0])[:200]
    return Outcome(v, status, wrong, detail)


def tally(outcomes: list[Outcome]) -> dict[str, int]:
    """Counts: tried, ok, quarantined, skipped, crashed, hung, silently wrong."""
    out = {"tried": len(outcomes)}
    for key in ("ok", "quarantined", "skipped", "crashed", "hung"):
        out[key] = sum(o.status == key for o in outcomes)
    out["silently_wrong"] = sum(o.silently_wrong for o in outcomes)
    return out


def cleanup(root: Path) -> None:
    shutil.rmtree(root, ignore_errors=True)
