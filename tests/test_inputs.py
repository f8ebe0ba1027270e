"""What ``load_ensemble(...).predict`` accepts: image shapes, and a warning for the wrong scale."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from neas.data import load_dataset
from neas.deploy import load_ensemble
from neas.deploy.model_file import DeployedEnsemble, InputSpec, save_ensemble_file
from neas.errors import InputShapeError
from neas.nn.builder import static_ensemble
from neas.search_spaces import create_space, sample
from tests.conftest import tiny_space


def saved(tmp_path: Path, space, *, mean, std, name: str = "model.pt") -> DeployedEnsemble:
    """A ``model.pt`` with fresh weights for a random architecture of ``space``, loaded back."""
    arch = sample(space, np.random.default_rng(0))
    torch.manual_seed(0)
    shape = (space.in_channels, space.image_size, space.image_size)
    spec = InputSpec(
        shape=shape,
        mean=tuple(float(v) for v in mean),
        std=tuple(float(v) for v in std),
        class_names=tuple(str(i) for i in range(space.num_classes)),
    )
    path = tmp_path / name
    net = static_ensemble(space, arch).eval()
    save_ensemble_file(path, net=net, arch=arch, space=space, input_spec=spec)
    return load_ensemble(path)


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory) -> DeployedEnsemble:
    """A one-channel 8x8 model with the built-in digits' normalisation (raw pixels / 16)."""
    ds = load_dataset("digits")
    return saved(tmp_path_factory.mktemp("inputs"), tiny_space(), mean=ds.mean, std=ds.std)


def scale_warnings(model: DeployedEnsemble, x, **kwargs) -> list[str]:
    """The warnings one ``predict`` gives, on a model whose warn-once flag is reset."""
    model._scale_warned = False
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.predict(x, **kwargs)
    return [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


def test_n_h_w_equals_n_1_h_w_for_one_channel_models(digits_model: DeployedEnsemble) -> None:
    x = (load_digits().images[:40] / 16.0).astype(np.float32)  # N x 8 x 8 raw pixels
    want = digits_model.predict_proba(x[:, None], normalize=True)
    np.testing.assert_array_equal(digits_model.predict_proba(x, normalize=True), want)
    np.testing.assert_array_equal(
        digits_model.predict(x, normalize=True), digits_model.predict(x[:, None], normalize=True)
    )
    tensor = digits_model.predict_proba(torch.from_numpy(x), normalize=True)
    np.testing.assert_array_equal(tensor.numpy(), want)
    # 1 x H x W: one C x H x W image and one N x H x W image are the same thing. Compared with
    # the same image as a batch of one: a batch of 1 and one of 40 may round differently (the
    # CPU's convolution kernel depends on the batch size; seen as 7e-9 apart on one machine).
    one = digits_model.predict_proba(x[:1], normalize=True)
    np.testing.assert_array_equal(one, digits_model.predict_proba(x[:1, None], normalize=True))
    np.testing.assert_allclose(one, want[:1], rtol=1e-5, atol=1e-7)
    assert digits_model.member_logits(x, normalize=True).shape == (2, 40, 10)
    with pytest.raises(InputShapeError, match=r"or N x 8 x 8\), got \(5, 7, 7\)"):
        digits_model.predict(np.zeros((5, 7, 7), np.float32))


def test_three_channel_models_take_one_c_h_w_image_not_n_h_w(tmp_path: Path) -> None:
    model = saved(tmp_path, tiny_space(in_channels=3), mean=[0.5] * 3, std=[0.25] * 3)
    x = np.random.default_rng(0).random((4, 3, 8, 8), dtype=np.float32)
    np.testing.assert_array_equal(
        model.predict_proba(x[0], normalize=True), model.predict_proba(x[:1], normalize=True)
    )
    with pytest.raises(InputShapeError, match="expected input N x 3 x 8 x 8"):
        model.predict(x[:, 0])  # N x H x W is no 3-channel input


def test_wrong_scale_warns_once_with_what_to_do(digits_model: DeployedEnsemble) -> None:
    images = load_digits().images[:50]  # scikit-learn's digits: 0-16
    pixels = np.round(images * 255 / 16).astype(np.uint8)  # the same as 8-bit pixels
    (msg,) = scale_warnings(digits_model, images, normalize=True)
    assert "range over [0, 16]" in msg and "x / 16" in msg and "normalize=True" in msg
    (msg,) = scale_warnings(digits_model, pixels, normalize=True)
    assert "range over [0, 255]" in msg and "x / 255" in msg
    (msg,) = scale_warnings(digits_model, pixels)  # raw pixels, not normalised either
    assert "expects normalised values" in msg and "with normalize=True" in msg
    (msg,) = scale_warnings(digits_model, images)
    assert "range over [0, 16]" in msg
    # once per loaded model: a second bad call on the same model stays quiet
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        digits_model.predict_proba(pixels, normalize=True)
    assert caught == []


def test_the_warning_points_at_the_callers_line(digits_model: DeployedEnsemble) -> None:
    digits_model._scale_warned = False
    with pytest.warns(UserWarning, match="trained on raw values in") as caught:
        digits_model.predict(load_digits().images[:5], normalize=True)
    assert caught[0].filename == __file__


def test_correctly_scaled_inputs_do_not_warn(digits_model: DeployedEnsemble) -> None:
    ds = load_dataset("digits")
    raw = (load_digits().images / 16.0).astype(np.float32)
    assert scale_warnings(digits_model, raw, normalize=True) == []
    assert scale_warnings(digits_model, ds.x_test) == []  # normalised like training
    assert scale_warnings(digits_model, ds.x_train) == []
    assert scale_warnings(digits_model, np.zeros((0, 8, 8), np.float32), normalize=True) == []


def test_models_on_another_scale_and_tables_are_not_checked(tmp_path: Path) -> None:
    # float images 0-16 (NEASClassifier on load_digits().images): mean/std are in that scale
    images = load_digits().images[:50].astype(np.float32)
    other = saved(tmp_path, tiny_space(), mean=[images.mean()], std=[images.std()], name="o.pt")
    assert scale_warnings(other, images, normalize=True) == []
    # tables: features have no fixed range (raw measurements, counts, one-hot columns)
    table = saved(
        tmp_path,
        create_space("mlp", in_channels=3, num_classes=2, width_mult=0.25),
        mean=[0.5, 0.5, 0.5],
        std=[0.2, 0.2, 0.2],
        name="t.pt",
    )
    rows = np.array([[1e4, -3e3, 0.5], [2.0, 1.0, 0.0]], np.float32)
    assert scale_warnings(table, rows, normalize=True) == []
    assert scale_warnings(table, rows) == []
