"""Per-file read time of the CardioSoft, DICOM, HL7 aECG, Philips, SCP-ECG and EDF readers vs. the usual approach.

For each real example in ``../shared/data`` this times, in one run and on the same file:

- ecgkit: ``read_native(path)`` (parse, decode, scale to mV, canonical leads, metadata);
- baseline: what public example code typically does for that format, written here as plain code:
  ``xml.etree`` + ``str.split`` number parsing (CardioSoft, aECG), ``pydicom.dcmread`` +
  ``ds.waveform_array`` (DICOM), ``xml.etree`` + a per-byte pure-Python LZW decoder and per-sample
  predictor loop (Philips, the approach of the public sierra-ecg reference readers); for SCP-ECG a
  straightforward pure-Python decode (``struct`` section walk, bit-string Huffman decoding with the
  default table, per-sample difference loop); for EDF the other maintained library, pyedflib
  (``EdfReader.readSignal`` per channel), on EDF files written by edfio from PTB-XL record 1.

A second table times the SCP-ECG Huffman decode alone (12 leads x 5000 samples of ``Example.scp``):
ecgkit's numba look-up kernel against the pure-Python decoder.

Prints median ms/file for both and the ratio. Usage: ``python benchmarks/bench_readers.py [--repeat N]``.
"""
from __future__ import annotations

import argparse
import base64
import statistics
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Callable

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ecgkit.io import read_native  # noqa: E402

DATA = REPO.parent / "shared" / "data"
FILES = [
    "ge-cardiosoft/example-XML1.xml",
    "dicom/example-DICOM1.dcm",
    "dicom/example-DICOM2.dcm",
    "hl7-aecg/subject1_0.xml",
    "philips/129DYPRG.XML",
    "philips/2020-5-18_15-48-11.xml",
    "philips/ad4d3d80-d165_1-04_orig.xml",
    "scp-ecg/Example.scp",
    "scp-ecg/demo.scp",
]


def _base_cardiosoft(path: Path) -> np.ndarray:
    strip = ET.parse(path).getroot().find("StripData")
    res = float(strip.find("Resolution").text)
    return np.array([[int(v) for v in w.text.split(",") if v.strip()] for w in strip.findall("WaveformData")],
                    dtype=np.float32) * res / 1000


def _base_dicom(path: Path) -> np.ndarray:
    import pydicom
    return pydicom.dcmread(path).waveform_array(0).T / 1000


def _base_aecg(path: Path) -> np.ndarray:
    ns = {"h": "urn:hl7-org:v3"}
    root = ET.parse(path).getroot()
    series = root.find("h:component/h:series", ns)
    out = []
    for value in series.findall("h:component/h:sequenceSet/h:component/h:sequence/h:value", ns):
        digits = value.find("h:digits", ns)
        if digits is not None:
            scale = float(value.find("h:scale", ns).get("value"))
            out.append([float(v) * scale / 1000 for v in digits.text.split()])
    return np.array(out, dtype=np.float32)


def _lzw_py(payload: bytes) -> bytes:
    table = {i: bytes([i]) for i in range(256)}
    nxt, prev, out = 256, b"", bytearray()
    buf, nbits = 0, 0
    for byte in payload:
        buf = (buf << 8) | byte
        nbits += 8
        if nbits >= 10:
            nbits -= 10
            code = (buf >> nbits) & 0x3FF
            buf &= (1 << nbits) - 1
            if code > 1022:
                break
            cur = table[code] if code in table else prev + prev[:1]
            if prev and nxt <= 1022:
                table[nxt] = prev + cur[:1]
                nxt += 1
            out += cur
            prev = cur
    return bytes(out)


def _base_philips(path: Path) -> np.ndarray:
    root = ET.parse(path).getroot()
    pw = root.find(".//{http://www3.medical.philips.com}parsedwaveforms")
    blob = base64.b64decode(pw.text)
    leads, off = [], 0
    while off < len(blob):
        size = int.from_bytes(blob[off:off + 4], "little", signed=True)
        start = int.from_bytes(blob[off + 6:off + 8], "little", signed=True)
        raw = _lzw_py(blob[off + 8:off + 8 + size])
        off += 8 + size
        n = len(raw) // 2
        d = [((((raw[i] << 8) | raw[n + i]) + 32768) % 65536) - 32768 for i in range(n)]
        x, last = d[:], start
        for i in range(2, n):
            x[i] = ((2 * x[i - 1] - x[i - 2] - last + 32768) % 65536) - 32768
            last = d[i] - 64
        leads.append(x)
    return np.array(leads[:12], dtype=np.float32) * 0.005


def _scp_sections(buf: bytes) -> dict[int, bytes]:
    import struct
    out = {}
    for p in range(22, 22 + 10 * 12, 10):
        sid, length, index = struct.unpack_from("<HII", buf, p)
        if length:
            out[sid] = buf[index - 1 + 16:index - 1 + length]
    return out


def _base_scp(path: Path) -> np.ndarray:
    import struct

    from ecgkit.io._scp_huffman import decode_reference
    sec = _scp_sections(path.read_bytes())
    n_leads = sec[3][0]
    spans = [struct.unpack_from("<II", sec[3], 2 + 9 * k) for k in range(n_leads)]
    avm, _interval, diff, _bimodal = struct.unpack_from("<HHBB", sec[6])
    lengths = struct.unpack_from(f"<{n_leads}H", sec[6], 6)
    p, out = 6 + 2 * n_leads, []
    for (start, end), n in zip(spans, lengths):
        count = end - max(start, 1) + 1
        blob = sec[6][p:p + n]
        p += n
        d = decode_reference(blob, count) if 2 in sec else list(struct.unpack_from(f"<{count}h", blob))
        x = d[:]
        for i in range(1, count):
            x[i] = d[i] + x[i - 1] if diff == 1 else (d[i] + 2 * x[i - 1] - x[i - 2] if diff == 2 and i > 1 else d[i])
        out.append(x)
    return np.array(out, dtype=np.float32) * (avm / 1e6)


def _base_edf(path: Path) -> np.ndarray:
    import pyedflib
    with pyedflib.EdfReader(str(path)) as f:
        return np.stack([f.readSignal(i) for i in range(f.signals_in_file)]).astype(np.float32) / 1000


def _lib_edfio(path: Path) -> np.ndarray:
    import edfio
    return np.stack([s.data for s in edfio.read_edf(path).signals]).astype(np.float32) / 1000


BASELINES: dict[str, Callable[[Path], np.ndarray]] = {
    "ge-cardiosoft": _base_cardiosoft, "dicom": _base_dicom, "hl7-aecg": _base_aecg, "philips": _base_philips,
    "scp-ecg": _base_scp, "edf": _base_edf}


def _edf_files(folder: Path) -> list[Path]:
    """EDF files written by edfio from PTB-XL record 1: 1 s data records, and single-sample records."""
    import tarfile

    import edfio

    from ecgkit.io import read_native as _read
    with tarfile.open(DATA / "ptbxl" / "records500.tar.xz") as tar:
        for name in ("00001_hr.hea", "00001_hr.dat"):
            member = tar.getmember(f"records500/00000/{name}")
            (folder / name).write_bytes(tar.extractfile(member).read())  # type: ignore[union-attr]
    sig = _read(folder / "00001_hr.hea").signal
    names = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
    paths = []
    for label, duration in (("ptbxl-1s-records.edf", 1.0), ("ptbxl-1-sample-records.edf", 0.002)):
        sigs = [edfio.EdfSignal(np.round(sig[k] * 1000.0), 500, label=f"ECG {n}", physical_dimension="uV",
                                physical_range=(-32768, 32767)) for k, n in enumerate(names)]
        edfio.Edf(sigs, data_record_duration=duration).write(folder / label)
        paths.append(folder / label)
    return paths


def _huffman_rows(repeat: int) -> None:
    import struct

    from ecgkit.io._scp_huffman import decode_huffman, decode_reference, default_tables
    sec = _scp_sections((DATA / "scp-ecg" / "Example.scp").read_bytes())
    lengths = struct.unpack_from("<12H", sec[6], 6)
    p, blobs = 6 + 24, []
    for n in lengths:
        blobs.append(sec[6][p:p + n])
        p += n
    tables = default_tables()
    ours = _median_ms(lambda: [decode_huffman(b, 5000, tables) for b in blobs], repeat)
    base = _median_ms(lambda: [decode_reference(b, 5000) for b in blobs], max(3, repeat // 4))
    print(f"{'SCP-ECG Huffman decode, 12 x 5000 samples':42s} {ours:10.2f} {base:12.2f} {base / ours:8.1f}x")


def _median_ms(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm-up: imports, numba cache load
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    import tempfile

    print(f"{'file':42s} {'ecgkit ms':>10s} {'baseline ms':>12s} {'speed-up':>9s}")
    with tempfile.TemporaryDirectory() as tmp:
        files = [(rel, DATA / rel) for rel in FILES]
        files += [(f"edf/{p.name}", p) for p in _edf_files(Path(tmp))]
        for rel, path in files:
            ours = _median_ms(lambda: read_native(path), args.repeat)
            base_fn = BASELINES[rel.split("/")[0]]
            base = _median_ms(lambda: base_fn(path), max(3, args.repeat // 4))
            print(f"{rel:42s} {ours:10.2f} {base:12.2f} {base / ours:8.1f}x")
            if rel.startswith("edf/"):  # the library choice: edfio alone against pyedflib
                lib = _median_ms(lambda: _lib_edfio(path), args.repeat)
                print(f"{'  edfio alone (vs pyedflib)':42s} {lib:10.2f} {base:12.2f} {base / lib:8.1f}x")
    _huffman_rows(args.repeat)


if __name__ == "__main__":
    main()
