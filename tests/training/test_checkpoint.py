"""Checkpoints: round trips, RNG state, architecture mismatches, atomic writes."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import cast

import pytest
import torch
from torch import nn

from gentorch.training import (
    CHECKPOINT_NAME,
    CheckpointMismatchError,
    load_checkpoint,
    make_adam,
    read_checkpoint_metadata,
    save_checkpoint,
    write_atomic,
)


def _net(hidden: int = 5) -> nn.Sequential:
    return nn.Sequential(nn.Linear(3, hidden), nn.BatchNorm1d(hidden), nn.Linear(hidden, 2))


def _trained() -> tuple[nn.Sequential, torch.optim.Optimizer]:
    net = _net()
    opt = make_adam(list(net.parameters()), lr=1e-2, betas=(0.5, 0.9))
    for _ in range(3):
        opt.zero_grad()
        net(torch.randn(8, 3)).square().mean().backward()
        opt.step()
    return net, opt


def test_round_trip_restores_weights_buffers_and_optimizer(tmp_path: Path) -> None:
    net, opt = _trained()
    path = save_checkpoint(tmp_path, {"net": net}, {"adam": opt}, metadata={"epoch": 3})
    assert path == tmp_path / CHECKPOINT_NAME

    net2 = _net()
    opt2 = make_adam(list(net2.parameters()), lr=1.0)
    loaded = load_checkpoint(tmp_path, {"net": net2}, {"adam": opt2})
    assert loaded.metadata == {"epoch": 3}
    for (k, a), (_, b) in zip(net.state_dict().items(), net2.state_dict().items(), strict=True):
        assert torch.equal(a, b), k  # includes BatchNorm's running stats and counter
    s1, s2 = opt.state_dict(), opt2.state_dict()
    assert s2["param_groups"][0]["lr"] == 1e-2
    assert s2["param_groups"][0]["betas"] == (0.5, 0.9)  # tuples come back as tuples
    assert set(s2["state"]) == set(s1["state"]) == set(range(6))  # integer keys kept
    for i in s1["state"]:
        for key, value in s1["state"][i].items():
            assert torch.equal(value, s2["state"][i][key]), (i, key)

    # The restored pair takes the same next step as the original.
    x = torch.randn(8, 3)
    for n, o in ((net, opt), (net2, opt2)):
        o.zero_grad()
        n(x).square().mean().backward()
        o.step()
    for a, b in zip(net.parameters(), net2.parameters(), strict=True):
        assert torch.equal(a, b)


def test_rng_and_generators_are_restored(tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(7)
    torch.rand(3, generator=gen)
    save_checkpoint(tmp_path, {}, generators={"shuffle": gen})
    expected_global, expected_gen = torch.rand(5), torch.rand(5, generator=gen)
    torch.rand(100)  # move both on
    torch.rand(100, generator=gen)
    load_checkpoint(tmp_path, {}, generators={"shuffle": gen}, restore_rng=True)
    assert torch.equal(torch.rand(5), expected_global)
    assert torch.equal(torch.rand(5, generator=gen), expected_gen)


def test_global_rng_untouched_unless_asked(tmp_path: Path) -> None:
    save_checkpoint(tmp_path, {})
    torch.manual_seed(123)
    expected = torch.rand(4)
    torch.manual_seed(123)
    load_checkpoint(tmp_path, {})
    assert torch.equal(torch.rand(4), expected)


def test_extra_state_with_tensors_tuples_and_int_keys(tmp_path: Path) -> None:
    noise = torch.randn(4, 2)
    state = {"step": 12, "noise": noise, "pair": (1.5, "a"), "by_index": {0: [noise[0]], 3: None}}
    save_checkpoint(tmp_path, {}, extra_state=state)
    back = load_checkpoint(tmp_path, {}).extra_state
    assert back["step"] == 12
    assert torch.equal(back["noise"], noise)
    assert back["pair"] == (1.5, "a")
    assert set(back["by_index"]) == {0, 3}
    assert torch.equal(back["by_index"][0][0], noise[0])


def test_shared_and_non_contiguous_tensors_are_saved(tmp_path: Path) -> None:
    tied = nn.Module()
    tied.a = nn.Linear(4, 4)
    tied.b = nn.Linear(4, 4)
    tied.b.weight = tied.a.weight  # the same storage under two names
    with torch.no_grad():
        tied.a.weight.copy_(torch.randn(4, 4).t())
    save_checkpoint(tmp_path, {"m": tied})
    fresh = nn.Module()
    fresh.a, fresh.b = nn.Linear(4, 4), nn.Linear(4, 4)
    load_checkpoint(tmp_path, {"m": fresh})
    assert torch.equal(fresh.a.weight, tied.a.weight)
    assert torch.equal(fresh.b.weight, tied.a.weight)


def test_different_architecture_lists_every_difference_and_loads_nothing(tmp_path: Path) -> None:
    save_checkpoint(tmp_path, {"net": _net(hidden=5)})
    # no BatchNorm at index 1, a wider first layer, an extra layer at index 3
    other = nn.Sequential(nn.Linear(3, 6), nn.Identity(), nn.Linear(6, 2), nn.Linear(2, 2))
    before = {k: v.clone() for k, v in other.state_dict().items()}
    with pytest.raises(CheckpointMismatchError) as info:
        load_checkpoint(tmp_path, {"net": other})
    message = str(info.value)
    assert "missing keys" in message
    assert "['3.weight', '3.bias']" in message
    assert "unexpected keys" in message
    assert "1.running_mean" in message
    assert "shape mismatches" in message
    assert "0.weight: checkpoint (5, 3) vs module (6, 3)" in message
    assert "2.weight: checkpoint (2, 5) vs module (2, 6)" in message
    for k, v in other.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_unknown_module_or_optimizer_name(tmp_path: Path) -> None:
    net, opt = _trained()
    save_checkpoint(tmp_path, {"net": net}, {"adam": opt})
    with pytest.raises(CheckpointMismatchError, match="module 'generator': not in the checkpoint"):
        load_checkpoint(tmp_path, {"generator": _net()})
    with pytest.raises(CheckpointMismatchError, match="optimizer 'sgd': not in the checkpoint"):
        load_checkpoint(tmp_path, {"net": _net()}, {"sgd": opt})


def test_missing_rng_or_generator_state_is_reported_before_anything_is_loaded(
    tmp_path: Path,
) -> None:
    net, _ = _trained()
    save_checkpoint(tmp_path, {"net": net}, save_rng=False)
    fresh = _net()
    before = {k: v.clone() for k, v in fresh.state_dict().items()}
    gen = torch.Generator().manual_seed(3)
    gen_state = gen.get_state()
    with pytest.raises(CheckpointMismatchError) as info:
        load_checkpoint(tmp_path, {"net": fresh}, generators={"shuffle": gen}, restore_rng=True)
    message = str(info.value)
    assert "generator 'shuffle': no state saved for it" in message
    assert (
        "restore_rng=True: the checkpoint holds no RNG state (saved with save_rng=False)" in message
    )
    for k, v in fresh.state_dict().items():  # nothing was loaded
        assert torch.equal(v, before[k]), k
    assert torch.equal(gen.get_state(), gen_state)


def test_metadata_is_readable_without_modules(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "x.safetensors", {}, metadata={"config": {"lr": 0.5}})
    assert read_checkpoint_metadata(tmp_path / "x.safetensors") == {"config": {"lr": 0.5}}


def test_bad_files_and_bad_metadata(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "none.safetensors", {})
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        load_checkpoint(junk, {})
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        read_checkpoint_metadata(junk)
    with pytest.raises(TypeError, match="metadata: expected JSON-able"):
        save_checkpoint(tmp_path, {}, metadata={"path": Path("/")})
    with pytest.raises(TypeError, match=r"modules\['x'\]: expected an nn\.Module"):
        save_checkpoint(tmp_path, {"x": torch.zeros(2)})  # type: ignore[dict-item]


def test_a_crash_mid_write_keeps_the_last_good_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    net = _net()
    path = save_checkpoint(tmp_path, {"net": net}, metadata={"epoch": 1})
    good = path.read_bytes()

    def crash(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", crash)
    with torch.no_grad():
        cast(nn.Linear, net[0]).weight.add_(1.0)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tmp_path, {"net": net}, metadata={"epoch": 2})
    monkeypatch.undo()
    assert path.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == [CHECKPOINT_NAME]  # no temp file left
    assert read_checkpoint_metadata(tmp_path)["epoch"] == 1


def test_write_atomic_replaces_whole_files(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "history.json"
    write_atomic(target, b"[1]")
    write_atomic(target, json.dumps([1, 2]).encode())
    assert json.loads(target.read_text()) == [1, 2]
    assert [p.name for p in target.parent.iterdir()] == ["history.json"]
