"""LAPGAN, the multi-scale baseline: the pyramid by hand values, its exact round trip, the networks per level,
conditioning on the real coarser image, and a short run through the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from ebgan.cli import main
from ebgan.config import apply_overrides, from_preset, resolve
from ebgan.errors import EbganError
from ebgan.lapgan import level_inputs
from ebgan.nets import (
    LapDiscriminator,
    LapGenerator,
    gaussian_pyramid,
    lapgan_levels,
    laplacian_pyramid,
    pyramid_down,
    pyramid_up,
    reconstruct_pyramid,
)
from ebgan.sampling import sample_from_run


def test_pyramid_steps_by_hand():
    x = torch.tensor([[[[0.0, 4.0], [8.0, 12.0]]]])
    # Bilinear x2 (half-pixel centres, edges clamped): source positions 0, 0.25, 0.75, 1 along each axis of
    # the plane 8 i + 4 j.
    assert_close(
        pyramid_up(x)[0, 0],
        torch.tensor([[0.0, 1.0, 3.0, 4.0], [2.0, 3.0, 5.0, 6.0], [6.0, 7.0, 9.0, 10.0], [8.0, 9.0, 11.0, 12.0]]),
    )
    assert_close(pyramid_down(x), torch.tensor([[[[6.0]]]]))  # the 2x2 mean
    residuals, coarse = laplacian_pyramid(x, 1)
    assert_close(coarse, torch.tensor([[[[6.0]]]]))
    assert_close(residuals[0], x - 6.0)  # up() of a single pixel is constant


def test_pyramid_round_trip_is_exact():
    x = torch.rand(3, 2, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    residuals, coarse = laplacian_pyramid(x, 2)
    assert [r.shape[-1] for r in residuals] == [32, 16] and coarse.shape[-1] == 8
    assert_close(reconstruct_pyramid(residuals, coarse), x)
    assert [g.shape[-1] for g in gaussian_pyramid(x, 2)] == [32, 16, 8]


def test_levels_and_network_shapes():
    assert (lapgan_levels(16), lapgan_levels(32), lapgan_levels(64)) == (1, 2, 3)
    with pytest.raises(EbganError, match="16, 32, 64"):
        lapgan_levels(28)
    G, D = LapGenerator(10, 3, 64, 8, True), LapDiscriminator(3, 64, 8, 0.0, False)
    x = G(torch.randn(4, 10))
    assert x.shape == (4, 3, 64, 64) and len(G.levels) == len(D.levels) == 3
    score, feats = D(x)
    assert score.shape == (4,) and feats.shape[0] == 4


def test_fakes_are_conditioned_on_the_real_coarser_image():
    torch.manual_seed(0)
    G = LapGenerator(10, 1, 32, 8, False)
    real = torch.rand(4, 1, 32, 32) * 2 - 1
    reals, fakes = level_inputs(G, real, torch.randn(4, 10))
    assert [r.shape[1:] for r in reals] == [(2, 32, 32), (2, 16, 16), (1, 8, 8)]
    for r, f in zip(reals[:-1], fakes[:-1]):
        assert f.shape == r.shape and torch.equal(f[:, 1:], r[:, 1:])  # the same condition channel
    # The real level input is the true residual: adding it to its condition gives the Gaussian level back.
    g = gaussian_pyramid(real, 2)
    assert_close(reals[0][:, :1] + reals[0][:, 1:], g[0])
    assert torch.equal(reals[-1], g[-1])


def test_lapgan_trains_on_mnist_at_32_pixels_and_samples(tmp_path, capsys, data_root):
    out = tmp_path / "lap"
    code = main(
        [
            "train",
            "--preset",
            "mnist-conv",
            "--loss",
            "nsgan",
            "--set",
            "arch=lapgan",
            "--set",
            "image_size=32",
            "--set",
            "g_channels=8",
            "--set",
            "d_channels=8",
            "--set",
            "batch_size=8",
            "--set",
            "n_grid=4",
            "--steps",
            "3",
            "--no-progress",
            "--data-root",
            str(data_root),
            "--out",
            str(out),
        ]
    )
    assert code == 0, capsys.readouterr().err
    x = sample_from_run(out, 4, seed=3)
    assert x.shape == (4, 1, 32, 32) and x.dtype == np.uint8
    assert np.array_equal(x, sample_from_run(out, 4, seed=3))  # the levels' noise planes follow the seed
    rows = (out / "metrics.jsonl").read_text()
    assert "loss_d/level0" in rows and "loss_g/level2" in rows


def test_lapgan_with_an_energy_loss_or_a_bad_size_is_one_error_line(tmp_path, capsys, data_root):
    assert (
        main(["train", "--preset", "mnist-conv", "--set", "arch=lapgan", "--dry-run", "--out", str(tmp_path / "a")])
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "arch=lapgan is the multi-scale GAN baseline" in err[0]
    assert (
        main(
            [
                "train",
                "--preset",
                "mnist-conv",
                "--loss",
                "nsgan",
                "--set",
                "arch=lapgan",
                "--steps",
                "1",
                "--no-progress",
                "--data-root",
                str(data_root),
                "--out",
                str(tmp_path / "b"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "16, 32, 64" in err[0] and "got 28" in err[0]
    cfg = resolve(
        apply_overrides(
            from_preset("mnist-conv"), {"arch": "lapgan", "loss": "wgan-gp", "batch_norm": False, "image_size": 32}
        )
    )
    assert cfg.arch == "lapgan"
