"""Per-file read time of the CardioSoft, DICOM, HL7 aECG and Philips readers vs. the usual approach.

For each real example in ``../shared/data`` this times, in one run and on the same file:

- ecgkit: ``read_native(path)`` (parse, decode, scale to mV, canonical leads, metadata);
- baseline: what public example code typically does for that format, written here as plain code:
  ``xml.etree`` + ``str.split`` number parsing (CardioSoft, aECG), ``pydicom.dcmread`` +
  ``ds.waveform_array`` (DICOM), ``xml.etree`` + a per-byte pure-Python LZW decoder and per-sample
  predictor loop (Philips, the approach of the public sierra-ecg reference readers).

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


BASELINES: dict[str, Callable[[Path], np.ndarray]] = {
    "ge-cardiosoft": _base_cardiosoft, "dicom": _base_dicom, "hl7-aecg": _base_aecg, "philips": _base_philips}


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
    print(f"{'file':42s} {'ecgkit ms':>10s} {'baseline ms':>12s} {'speed-up':>9s}")
    for rel in FILES:
        path = DATA / rel
        ours = _median_ms(lambda: read_native(path), args.repeat)
        base_fn = BASELINES[rel.split("/")[0]]
        base = _median_ms(lambda: base_fn(path), max(3, args.repeat // 4))
        print(f"{rel:42s} {ours:10.2f} {base:12.2f} {base / ours:8.1f}x")


if __name__ == "__main__":
    main()
