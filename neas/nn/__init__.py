"""Torch modules: the K-path supernet and the static ensembles extracted from it."""

from neas.nn.ensemble import EnsembleNet, build_ensemble, combine
from neas.nn.supernet import WEIGHT_MODES, Supernet, scale_grad

__all__ = ["WEIGHT_MODES", "EnsembleNet", "Supernet", "build_ensemble", "combine", "scale_grad"]
