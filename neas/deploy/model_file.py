"""Deployed ensembles: the ``model.pt`` file format and ``load_ensemble``.

``model.pt`` is a plain dict of tensors, strings and numbers that ``torch.load(weights_only=True)``
reads without running pickled code:

    format          "neas-ensemble" (the marker), format_version 1
    arch, space     the architecture and its search space, as neas JSON
    state_dict      the static ``EnsembleNet``'s tensors
    input           {"shape": [C, H, W], "mean", "std", "class_names"}
    cascade_threshold   the chosen early-exit threshold, or None

The network is rebuilt from ``space`` and ``arch`` alone (no supernet is needed), then the tensors
are loaded into it.

Example (not run as a doctest: it trains or needs a run folder)::

    model = load_ensemble("runs/digits/ensembles/e000/model.pt")
    model.predict(x_normalised)
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from neas.config import SERVE_BATCH
from neas.cost import CostTable
from neas.errors import InputShapeError, ModelFileError, NeasError
from neas.files import atomic_torch_save
from neas.nn.builder import static_ensemble
from neas.nn.layers import EnsembleNet, combine
from neas.search_spaces.arch import EnsembleArch
from neas.search_spaces.spec import SearchSpace
from neas.tabular import TableEncoder
from neas.torchfile import read_torch_file, tensor_elements, unknown_keys

FORMAT = "neas-ensemble"
FORMAT_VERSION = 1
#: What to do about a damaged ``model.pt``.
REEXPORT = "export the ensemble again with `neas export`"
_KEYS = ("arch", "space", "state_dict", "input")
Array = TypeVar("Array", np.ndarray, torch.Tensor)


def _outside_neas() -> int:
    """The ``stacklevel`` that points a warning at the first caller outside neas (and outside
    torch, whose ``no_grad`` wrapper sits between a method and its caller)."""
    frame, level = sys._getframe(1), 1  # the frame that calls ``warnings.warn`` is level 1
    while frame is not None and frame.f_globals.get("__name__", "").split(".")[0] in (
        "neas",
        "torch",
    ):
        frame, level = frame.f_back, level + 1
    return level


@dataclass(frozen=True)
class InputSpec:
    """What the network expects: N x C x H x W float32, normalised per channel with mean/std.

    ``mean``/``std`` are in the dataset's raw scale (8-bit pixels / 255, so values in [0, 1]).
    """

    shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    class_names: tuple[str, ...]
    preprocessing: dict[str, Any] | None = None  # a table's encoding (``neas.tabular``)

    @property
    def is_table(self) -> bool:
        return self.shape[1:] == (1, 1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "shape": list(self.shape),
            "mean": list(self.mean),
            "std": list(self.std),
            "class_names": list(self.class_names),
            "preprocessing": self.preprocessing,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InputSpec:
        return cls(
            shape=tuple(int(v) for v in data["shape"]),  # type: ignore[arg-type]
            mean=tuple(float(v) for v in data["mean"]),
            std=tuple(float(v) for v in data["std"]),
            class_names=tuple(str(v) for v in data["class_names"]),
            preprocessing=data.get("preprocessing"),
        )


def save_ensemble_file(
    path: Path,
    *,
    net: EnsembleNet,
    arch: EnsembleArch,
    space: SearchSpace,
    input_spec: InputSpec,
    cascade_threshold: float | None = None,
) -> None:
    """Write ``model.pt`` (atomically) in the format ``load_ensemble`` reads."""
    atomic_torch_save(
        {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "arch": arch.to_json(space),
            "space": space.to_json(),
            "state_dict": {k: v.detach().cpu().clone() for k, v in net.state_dict().items()},
            "input": input_spec.to_dict(),
            "cascade_threshold": cascade_threshold,
        },
        path,
    )


#: Every key a ``model.pt`` may hold (``save_ensemble_file`` writes them all).
KEYS = ("format", "format_version", *_KEYS, "cascade_threshold")


def read_ensemble_file(path: str | Path) -> dict[str, Any]:
    """The checked payload of a ``model.pt``; ``ModelFileError`` (one line) if it is not ours."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file {path} does not exist")
    payload = read_torch_file(path, error=ModelFileError, advice=REEXPORT)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelFileError(
            f"{path} is not a neas ensemble (no format marker {FORMAT!r}); export one with "
            "`neas export`"
        )
    missing = [k for k in _KEYS if k not in payload]
    if missing:
        raise ModelFileError(
            f"{path} is a damaged neas ensemble: missing {', '.join(missing)}; {REEXPORT}"
        )
    version = payload.get("format_version", 0)
    if not isinstance(version, int):
        raise ModelFileError(
            f"{path} is a damaged neas ensemble: format_version {version!r} is not a number; "
            f"{REEXPORT}"
        )
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path} has format version {payload['format_version']}; this neas reads "
            f"version {FORMAT_VERSION} (upgrade neas)"
        )
    extra = unknown_keys(payload, KEYS)
    if extra:
        raise ModelFileError(
            f"{path} holds fields no neas ensemble has ({', '.join(extra[:3])}); {REEXPORT}"
        )
    return payload


class DeployedEnsemble:
    """A loaded ensemble: ``predict``/``predict_proba`` on numpy arrays or tensors.

    Inputs are N x C x H x W (or one C x H x W image; a one-channel model also takes N x H x W),
    already normalised like the training data; pass ``normalize=True`` to apply the stored
    mean/std to raw inputs (pixels / 255). An image model trained on raw values in [0, 1] warns
    once (``UserWarning``) when inputs lie far outside what it expects, e.g. 8-bit pixels (0-255)
    or scikit-learn's digits (0-16) not divided by 255 or 16 (``_check_scale``; tables, whose
    features have no fixed range, are not checked). Outputs have the input's kind (numpy in,
    numpy out). ``cascade_threshold=t`` runs members in order and stops for each sample as soon
    as the running mean of the members' probabilities has a max above ``t`` (``t >= 1`` runs
    every member; ``t = 0`` only the first).
    """

    def __init__(
        self,
        *,
        net: EnsembleNet,
        arch: EnsembleArch,
        space: SearchSpace,
        input_spec: InputSpec,
        cascade_threshold: float | None,
    ) -> None:
        self.net, self.arch, self.space = net.eval(), arch, space
        self.input_spec, self.cascade_threshold = input_spec, cascade_threshold
        self._scale_warned = False

    @property
    def num_members(self) -> int:
        return self.arch.num_members

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.input_spec.class_names

    def encode_table(self, frame: Any) -> np.ndarray:
        """Raw feature rows (N x F) of a table (a pandas DataFrame with the training columns),
        encoded as in training (``neas.tabular``): pass them on with ``normalize=True``."""
        if self.input_spec.preprocessing is None:
            raise InputShapeError("this ensemble was not trained on a table with text columns")
        return TableEncoder.from_dict(self.input_spec.preprocessing).transform(frame)

    def _tensor(self, x: np.ndarray | torch.Tensor, normalize: bool) -> torch.Tensor:
        t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
        t = t.detach().to("cpu", torch.float32)
        c, h, w = self.input_spec.shape
        if self.input_spec.is_table and t.ndim == 2:  # table rows N x F
            t = t[:, :, None, None]
        if t.ndim == 3:  # one C x H x W image, or N x H x W images of a one-channel model
            t = t[:, None] if c == 1 and tuple(t.shape[1:]) == (h, w) else t[None]
        if tuple(t.shape[1:]) != self.input_spec.shape:
            also = f", or N x {h} x {w}" if c == 1 and not self.input_spec.is_table else ""
            raise InputShapeError(
                f"expected input N x {c} x {h} x {w} (or one {c} x {h} x {w} image{also}), "
                f"got {tuple(torch.as_tensor(x).shape)}"
            )
        self._check_scale(t, normalize)
        if normalize:
            mean = torch.tensor(self.input_spec.mean).view(1, -1, 1, 1)
            std = torch.tensor(self.input_spec.std).view(1, -1, 1, 1)
            t = (t - mean) / std
        return t

    def _check_scale(self, t: torch.Tensor, normalize: bool) -> None:
        """Warn once when image inputs lie far outside the model's training scale.

        Checked only for image models whose stored mean/std can come from raw values in [0, 1]
        (every built-in dataset, uint8 images / 255); such a model expects raw values in [0, 1]
        with ``normalize=True`` and ``(raw - mean) / std`` without. Inputs that, taken back to
        the raw scale, reach above 2 or below -1 (a whole range beyond [0, 1]) are wrong for it:
        pixels 0-255 or digits 0-16 not divided first, or raw inputs passed without
        ``normalize=True``. Tables are not checked: their features have no fixed range.
        """
        spec = self.input_spec
        # (getattr: an ensemble pickled before this check existed has no flag)
        if getattr(self, "_scale_warned", False) or spec.is_table or t.numel() == 0:
            return
        mean, std = np.asarray(spec.mean), np.asarray(spec.std)
        if not (np.all((mean >= 0) & (mean <= 1)) and np.all(std <= 0.5 + 1e-6)):
            return  # trained on another scale (e.g. float images 0-16): nothing to compare
        lo_c, hi_c = t.amin(dim=(0, 2, 3)).numpy(), t.amax(dim=(0, 2, 3)).numpy()
        raw_lo, raw_hi = (lo_c, hi_c) if normalize else (lo_c * std + mean, hi_c * std + mean)
        if not (raw_hi.max() > 2.0 or raw_lo.min() < -1.0):  # (NaN compares False: no warning)
            return
        lo, hi = float(lo_c.min()), float(hi_c.max())
        fix = "x / 255 for 8-bit pixels, x / 16 for scikit-learn's digits"
        if normalize:
            message = (
                f"inputs range over [{lo:.4g}, {hi:.4g}], but this model was trained on raw "
                f"values in [0, 1] (8-bit pixels / 255): scale them to [0, 1] first ({fix}) "
                "and keep normalize=True"
            )
        else:
            z_lo, z_hi = float((-mean / std).min()), float(((1 - mean) / std).max())
            message = (
                f"inputs range over [{lo:.4g}, {hi:.4g}], but this model expects normalised "
                f"values ((raw - mean) / std, raw values in [0, 1]), within [{z_lo:.3g}, "
                f"{z_hi:.3g}]: pass raw values scaled to [0, 1] ({fix}) with normalize=True"
            )
        self._scale_warned = True
        warnings.warn(
            f"{message} (predictions on such inputs are unreliable; warned once per model)",
            UserWarning,
            stacklevel=_outside_neas(),
        )

    @staticmethod
    def _like(result: torch.Tensor, x: np.ndarray | torch.Tensor) -> Any:
        return result if isinstance(x, torch.Tensor) else result.numpy()

    @torch.no_grad()
    def member_logits(
        self, x: Array, *, normalize: bool = False, batch_size: int = SERVE_BATCH
    ) -> Array:
        """Every member's logits, shape (K, N, classes)."""
        t = self._tensor(x, normalize)
        parts = [torch.stack(self.net.member_logits(xb)) for xb in t.split(batch_size)]
        return self._like(torch.cat(parts, dim=1), x)

    @torch.no_grad()
    def predict_proba(
        self,
        x: Array,
        *,
        normalize: bool = False,
        cascade_threshold: float | None = None,
        batch_size: int = SERVE_BATCH,
    ) -> Array:
        """Class probabilities (N, classes): the mean of the (run) members' softmaxes."""
        t = self._tensor(x, normalize)
        if cascade_threshold is None:
            parts = [self.net(xb) for xb in t.split(batch_size)]
        else:
            parts = [self._cascade(xb, cascade_threshold)[0] for xb in t.split(batch_size)]
        return self._like(torch.cat(parts), x)

    def predict(
        self,
        x: Array,
        *,
        normalize: bool = False,
        cascade_threshold: float | None = None,
        batch_size: int = SERVE_BATCH,
    ) -> Array:
        """Predicted class indices (N,); names are ``class_names[i]``."""
        probs = self.predict_proba(
            x, normalize=normalize, cascade_threshold=cascade_threshold, batch_size=batch_size
        )
        return probs.argmax(-1)

    @torch.no_grad()
    def members_run(self, x: Array, *, cascade_threshold: float, normalize: bool = False) -> Array:
        """How many members the cascade runs for each sample (N,), 1..K."""
        _, used = self._cascade(self._tensor(x, normalize), cascade_threshold)
        return self._like(used, x)

    def _cascade(self, x: torch.Tensor, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Early exit: the trunk once, then members in order only for samples still unsure."""
        h = self.net.trunk(self.net.stem(x))
        k = self.num_members
        total = torch.zeros(len(x), self.space.num_classes)
        out = torch.zeros_like(total)
        used = torch.zeros(len(x), dtype=torch.long)
        active = torch.arange(len(x))
        for m, branch in enumerate(self.net.branches):
            total[active] += combine([branch(h[active])])
            mean = total[active] / (m + 1)
            done = mean.max(-1).values > threshold if m < k - 1 else torch.ones_like(active).bool()
            out[active[done]], used[active[done]] = mean[done], m + 1
            active = active[~done]
            if len(active) == 0:
                break
        return out, used


def load_ensemble(path: str | Path) -> DeployedEnsemble:
    """Load a ``model.pt`` written by ``neas export`` (no pickled code is ever run).

    Example (not run as a doctest: it trains or needs a run folder)::

        model = load_ensemble("runs/digits/ensembles/e000/model.pt")
        model.predict(raw_images, normalize=True, cascade_threshold=model.cascade_threshold)
    """
    payload = read_ensemble_file(path)
    try:
        space = SearchSpace.from_json(payload["space"])
        arch = EnsembleArch.from_json(payload["arch"], space)
        needed, held = (
            CostTable.from_space(space).ensemble(arch).params,
            tensor_elements(payload["state_dict"]),
        )
        if needed > held:  # checked before anything is allocated for the network
            raise ValueError(f"its architecture needs {needed:,} weights, it holds {held:,}")
        with torch.random.fork_rng(devices=[]):  # the initialisation the weights replace
            net = static_ensemble(space, arch)
        net.load_state_dict(payload["state_dict"])
        spec = InputSpec.from_dict(payload["input"])
        if spec.preprocessing is not None:  # a table's encoding: checked before it is needed
            features = TableEncoder.from_dict(spec.preprocessing).features
            if spec.shape != (len(features), 1, 1):
                raise ValueError(f"its table encoding has {len(features)} features")
        threshold = payload.get("cascade_threshold")
        threshold = None if threshold is None else float(threshold)
    except NeasError as exc:
        raise ModelFileError(f"{path} is a damaged neas ensemble: {exc}; {REEXPORT}") from None
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0].rstrip(":")
        raise ModelFileError(f"{path} is a damaged neas ensemble: {first}; {REEXPORT}") from None
    return DeployedEnsemble(
        net=net,
        arch=arch,
        space=space,
        input_spec=spec,
        cascade_threshold=threshold,
    )
