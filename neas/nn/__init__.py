"""Torch modules: the K-path supernet, the one builder of static modules, static ensembles."""

from neas.nn.builder import build_block, build_head, build_stem, static_ensemble
from neas.nn.ensemble import build_ensemble
from neas.nn.layers import EnsembleNet, combine
from neas.nn.supernet import Supernet, scale_grad

__all__ = [
    "EnsembleNet",
    "Supernet",
    "build_block",
    "build_ensemble",
    "build_head",
    "build_stem",
    "combine",
    "scale_grad",
    "static_ensemble",
]
