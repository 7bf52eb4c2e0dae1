"""Put a reader's native channels into canonical 12-lead order, deriving the limb leads if needed.

Many devices store only the 8 independent leads (I, II, V1-V6): III, aVR, aVL and aVF are exact
linear combinations of I and II (Einthoven and Goldberger), so a reader that finds exactly those
8 derives the other 4 and says so in ``repairs``. Any other gap is a missing lead (an error).
"""
from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ecgkit.record import LEADS, canonical_lead, lead_order

#: The leads a device must store for the other four to be derived.
INDEPENDENT_LEADS = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")
#: The limb leads that are linear combinations of I and II.
DERIVED_LEADS = ("III", "aVR", "aVL", "aVF")
DERIVED_REPAIR = "derived III,aVR,aVL,aVF from I,II"


def derive_limb_leads(lead_i: NDArray[np.floating], lead_ii: NDArray[np.floating]) -> NDArray[np.float32]:
    """Return III, aVR, aVL, aVF from I and II, shape (4, n_samples), float32, same unit as the input.

    III = II - I, aVR = -(I + II)/2, aVL = I - II/2, aVF = II - I/2.
    """
    i = np.asarray(lead_i, dtype=np.float32)
    ii = np.asarray(lead_ii, dtype=np.float32)
    return np.stack([ii - i, -0.5 * (i + ii), i - 0.5 * ii, ii - 0.5 * i])


def to_canonical(
    names: list[str],
    data: NDArray[np.floating],
    *,
    path: str,
    record_id: str,
) -> tuple[NDArray[np.float32], tuple[str, ...]]:
    """Reorder source channels into :data:`~ecgkit.record.LEADS` order, deriving limb leads if needed.

    Parameters
    ----------
    names : list of str
        Source channel names, one per row of ``data`` (any spelling :func:`canonical_lead` accepts).
    data : NDArray[floating], shape (n_channels, n_samples)
        Millivolts.

    Returns
    -------
    signal : NDArray[np.float32], shape (12, n_samples)
        Millivolts in canonical order.
    repairs : tuple of str
        ``("derived III,aVR,aVL,aVF from I,II",)`` when the 4 limb leads were derived, else ``()``.

    Raises
    ------
    SignalError
        If a lead is missing and cannot be derived (the message names it).
    """
    canon = [canonical_lead(n) for n in names]
    present = set(c for c in canon if c is not None)
    if present.issuperset(INDEPENDENT_LEADS) and not present.intersection(DERIVED_LEADS):
        rows = {c: k for k, c in reversed(list(enumerate(canon))) if c is not None}
        out = np.empty((len(LEADS), data.shape[1]), dtype=np.float32)
        for lead in INDEPENDENT_LEADS:
            out[LEADS.index(lead)] = data[rows[lead]]
        out[2:6] = derive_limb_leads(out[0], out[1])
        return out, (DERIVED_REPAIR,)
    idx = lead_order(names, path=path, record_id=record_id)
    return np.ascontiguousarray(data[idx], dtype=np.float32), ()
