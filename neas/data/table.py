"""CSV tables: the label column named by ``target``, the others encoded by
``neas.tabular.TableEncoder`` (recorded in the dataset, so serving encodes the same way)."""

from __future__ import annotations

from pathlib import Path

from neas.data.dataset import Raw, checked, labels_of
from neas.errors import DataError
from neas.tabular import TableEncoder, read_csv


def read_table_csv(path: Path, target: str | None) -> Raw:
    """A CSV table: ``target`` is the label column, the rest encoded by ``TableEncoder``."""
    frame, y = read_csv(str(path), target=target)
    try:
        encoder = TableEncoder.fit(frame)
        x = encoder.transform(frame)
    except DataError as exc:
        raise DataError(f"{path}: {exc}") from None
    labels, names = labels_of(y.to_numpy(), where=str(path))
    raw = checked(x[:, :, None, None], labels, names, where=str(path))
    return Raw(raw.x, raw.y, raw.class_names, preprocessing=encoder.to_dict())
