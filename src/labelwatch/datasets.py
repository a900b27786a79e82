"""Real multi-label data sets that ship inside packages (no download at run time)."""

from __future__ import annotations

import gzip
import importlib.util
import pathlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["Dataset", "load_yeast"]

_INSTALL_RIVER = "pip install 'labelwatch[demo]'  (or: pip install 'river>=0.26.1')"


@dataclass(frozen=True)
class Dataset:
    """Features ``X`` (n, d), multi-hot labels ``Y`` (n, L) and the label names."""

    X: npt.NDArray[np.float64]
    Y: npt.NDArray[np.bool_]
    labels: tuple[str, ...]
    name: str


def load_yeast() -> Dataset:
    """The MULAN yeast data set (2,417 x 103 features x 14 labels), read from river's copy.

    Reads the file river ships without importing river, so only numpy is needed at run time.
    """
    spec = importlib.util.find_spec("river")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"the yeast data set comes with river: {_INSTALL_RIVER}")
    root = pathlib.Path(next(iter(spec.submodule_search_locations)))
    path = root / "datasets" / "yeast.csv.gz"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; yeast needs river>=0.26.1: {_INSTALL_RIVER}")
    with gzip.open(path, "rt") as f:
        header = f.readline().strip().split(",")
        arr = np.loadtxt(f, delimiter=",")
    n_features = sum(1 for h in header if h.startswith("Att"))
    labels = tuple(h for h in header[n_features:])
    return Dataset(
        X=arr[:, :n_features],
        Y=arr[:, n_features:].astype(bool),
        labels=labels,
        name="yeast",
    )
