"""Datasets as normalised numpy arrays: images and tables, read by one registry of readers.

One entry point, :func:`load_dataset`, turns a built-in name (``digits``, ``mnist``,
``fashion-mnist``, ``cifar10``), an ``.npz`` or CSV file or a folder of class sub-folders into a
:class:`Dataset`: deterministic stratified train/val/test splits, ``float32`` arrays laid out
N x C x H x W (tables: N x F x 1 x 1) and normalised per channel with the train split's mean
and std. Bad data raises :class:`DataError` with one line that names the problem. Torch is not
needed here.

The package, one idea a module: ``dataset`` (the ``Dataset`` contract, the ``Raw`` arrays a
reader returns and their checks), ``splits`` (stratified splits, normalisation), ``registry``
(which reader reads a source), ``load`` (``load_dataset``), and the readers: ``builtin``
(digits, MNIST and Fashion-MNIST), ``idx``, ``cifar`` (a restricted unpickler), ``npz``,
``table`` (CSV) and ``folder`` (image folders).

Example:
    >>> ds = load_dataset("digits", seed=0)
    >>> ds.input_shape, ds.num_classes
    ((1, 8, 8), 10)
"""

from neas.data.builtin import BUILTIN, FASHION_MNIST_DIR
from neas.data.dataset import Dataset
from neas.data.load import load_data, load_dataset
from neas.errors import DataError

__all__ = ["BUILTIN", "FASHION_MNIST_DIR", "DataError", "Dataset", "load_data", "load_dataset"]
