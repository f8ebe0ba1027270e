from __future__ import annotations

import numpy as np
import pytest

from neas.search_spaces import (
    NEAS_ARCH_LISTS,
    SKIP,
    EnsembleArch,
    InvalidArchError,
    SearchSpace,
    UnknownSpaceError,
    create_space,
    decode,
    encode,
    from_neas_arch_list,
    genome_bounds,
    list_spaces,
    sample,
)


def test_registry_lists_and_rejects_unknown_names() -> None:
    assert "mbconv" in list_spaces()
    assert list_spaces("mb*") == ["mbconv"]
    with pytest.raises(UnknownSpaceError, match="valid spaces: mbconv"):
        create_space("resnet")


def test_default_space_is_the_neas_space() -> None:
    s = create_space("mbconv")
    assert s.num_layers == 20 and s.num_members == 2
    assert [o.name for o in s.ops] == ["k3e4", "k3e6", "k5e4", "k5e6", "k7e4", "k7e6"]
    firsts = [lay for lay in s.layers if lay.first_in_stage]
    assert [lay.out_channels for lay in firsts] == [24, 40, 80, 112, 160]
    assert [lay.stride for lay in firsts] == [2, 2, 2, 1, 2]
    assert s.stem.stride == 2 and s.stem.out_channels == 16
    assert all(SKIP not in lay.candidates for lay in firsts)
    assert all(SKIP in lay.candidates for lay in s.layers if not lay.first_in_stage)
    assert (s.head.head_width, s.head.feature_width, s.head.num_classes) == (960, 1280, 1000)
    assert s.layers[-1].output_size == 7


@pytest.mark.parametrize("size,final", [(8, 2), (28, 2), (32, 2), (64, 2), (224, 7)])
def test_small_inputs_drop_earliest_strides(size: int, final: int) -> None:
    s = create_space("mbconv", image_size=size)
    assert s.layers[-1].output_size == final
    strides = [s.stem.stride] + [lay.stride for lay in s.layers if lay.first_in_stage]
    dropped = [i for i, (a, b) in enumerate(zip(strides, [2, 2, 2, 2, 1, 2])) if a != b]
    assert dropped == list(range(len(dropped)))  # earliest first


def test_space_json_round_trip() -> None:
    s = create_space("mbconv", image_size=32, num_classes=7, width_mult=0.5, num_members=3)
    assert SearchSpace.from_json(s.to_json()) == s


@pytest.mark.parametrize("seed", range(10))
def test_arch_round_trips_through_genome_and_json(seed: int) -> None:
    s = create_space("mbconv", num_members=3)
    arch = sample(s, np.random.default_rng(seed))
    genome = encode(arch, s)
    low, high = genome_bounds(s)
    assert genome.shape == low.shape and (genome >= low).all() and (genome <= high).all()
    assert decode(genome, s) == arch
    assert EnsembleArch.from_json(arch.to_json(s), s) == arch
    # every genome in bounds decodes to a valid architecture
    g = np.random.default_rng(seed).integers(low, high + 1)
    assert encode(decode(g, s), s)[0] == g[0]


def test_sampling_covers_splits_and_ops() -> None:
    s = create_space("mbconv")
    rng = np.random.default_rng(0)
    archs = [sample(s, rng) for _ in range(300)]
    splits = {a.split for a in archs}
    assert min(splits) <= 2 and max(splits) >= 18
    ops = {op for a in archs for m in range(2) for op in a.member_ops(m)}
    assert ops == {SKIP, 0, 1, 2, 3, 4, 5}


def test_validation_errors_are_clear(space: SearchSpace) -> None:
    good = sample(space, np.random.default_rng(0))
    n = space.num_layers
    with pytest.raises(InvalidArchError, match="out of range"):
        encode(EnsembleArch(split=0, shared=(), members=((9,) * n, (0,) * n)), space)
    with pytest.raises(InvalidArchError, match="first layer of stage 0"):
        encode(EnsembleArch(split=1, shared=(SKIP,), members=((0,) * (n - 1),) * 2), space)
    with pytest.raises(InvalidArchError, match="wrong length"):
        encode(
            EnsembleArch(
                split=good.split,
                shared=good.shared,
                members=(good.members[0][:-1], good.members[1]),
            ),
            space,
        )
    with pytest.raises(InvalidArchError, match="wrong length"):
        decode([0] * 5, space)
    with pytest.raises(InvalidArchError, match="split"):
        decode([n + 1] + [0] * (2 * n), space)
    with pytest.raises(InvalidArchError, match="unknown op"):
        EnsembleArch.from_dict({"split": 0, "shared": [], "members": [["k9e9"] * n] * 2}, space)


def test_neas_published_arch_lists_decode() -> None:
    s = create_space("mbconv")
    archs = {k: from_neas_arch_list(v, s) for k, v in NEAS_ARCH_LISTS.items()}
    assert archs["NEAS-S"].split == 20 and archs["NEAS-S"].members == ((), ())
    assert archs["NEAS-M"].split == 16 and archs["NEAS-M"].members == ((5, 0, 5, 4), (3, 5, 2, 5))
    assert archs["NEAS-L"].shared[:4] == (5, 5, 1, 3)
    assert archs["NEAS-S"].shared[1] == SKIP
    for arch in archs.values():
        assert decode(encode(arch, s), s) == arch
    with pytest.raises(InvalidArchError, match="wrong length"):
        from_neas_arch_list(NEAS_ARCH_LISTS["NEAS-M"][:-1], s)
    bad = list(NEAS_ARCH_LISTS["NEAS-S"])
    bad[3] = -1  # skip on layer 0, a stage's first layer
    with pytest.raises(InvalidArchError, match="first layer of stage 0"):
        from_neas_arch_list(bad, s)


def test_with_candidates_shrinks_and_never_empties(space: SearchSpace) -> None:
    cands = tuple(lay.candidates[:2] for lay in space.layers)
    small = space.with_candidates(cands)
    assert all(len(lay.candidates) == 2 for lay in small.layers)
    assert small.num_architectures() < space.num_architectures()
    with pytest.raises(ValueError, match="no non-skip op"):
        space.with_candidates(((SKIP,),) + cands[1:])
