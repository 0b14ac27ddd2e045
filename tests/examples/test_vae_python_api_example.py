"""Runs examples/vae_python_api.py (shortened) and checks what it prints and writes."""

from __future__ import annotations

import math
import runpy
from pathlib import Path

import pytest
from PIL import Image

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "vae_python_api.py"


def test_example_trains_reports_and_writes_the_pictures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main = runpy.run_path(str(SCRIPT))["main"]
    results = main(tmp_path, epochs=3, k=20, progress=False)
    printed = capsys.readouterr().out
    # the IWAE bound is at least the ELBO in expectation (k=20 against one sample here), so the
    # NLL is at most the negative ELBO, up to the noise of both estimates
    assert 0 < results["nll"] < -results["test_elbo"] + 1.0
    assert results["nll_stderr"] > 0
    assert results["test_elbo_stderr"] > 0
    # predicting 0.5 for each of the 64 grey levels costs 64 log 2 nats; 3 epochs do better
    assert -results["test_elbo"] < 64 * math.log(2)
    assert 0 <= results["active_units"] <= 2
    assert f"NLL (IWAE k=20) {results['nll']:.2f}" in printed
    for name in ("samples", "reconstructions", "latent_manifold", "latent_scatter", "loss_curves"):
        path = tmp_path / f"{name}.png"
        assert f"wrote {path}" in printed
        assert Image.open(path).size[0] > 100
    assert (tmp_path / "checkpoint.safetensors").is_file()
    assert (tmp_path / "history.csv").read_text().count("\n") == 4  # header + 3 epochs
    assert Image.open(tmp_path / "loss_curves.png").size == (1350, 350)  # loss, recon, kl
