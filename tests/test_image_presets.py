"""The paper's image architectures: one conv family from 28 to 256 pixels, the noise-plane generator, the image
presets on a generated folder, and what --dry-run reports (parameters and FLOPs, checked by hand)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from ebgan.cli import main
from ebgan.config import apply_overrides, from_preset, resolve
from ebgan.nets import (
    ConvGenerator,
    NoisePlanes,
    build_networks,
    describe_networks,
    generator_channels,
    seeded_noise,
)
from ebgan.sampling import sample_from_run


def test_generator_channels_follow_dcgan_and_the_papers_imagenet_spec():
    assert generator_channels(28, 64) == [128, 64]
    assert generator_channels(64, 64) == [512, 256, 128, 64]  # DCGAN
    # The paper: (1024)4c-(512)4c2s-(256)4c2s-(128)4c2s-(64)4c2s-(64)4c2s-(3)3c at 128 px, one layer more at 256.
    assert generator_channels(128, 64) == [1024, 512, 256, 128, 64, 64]
    assert generator_channels(256, 64) == [1024, 1024, 512, 256, 128, 64, 64]


@pytest.mark.parametrize("size", [28, 32, 64, 128, 256])
def test_every_resolution_builds_generator_and_auto_encoder(size):
    cfg = resolve(
        apply_overrides(
            from_preset("mnist-conv"), {"image_size": size, "channels": 3, "g_channels": 8, "d_channels": 8}
        )
    )
    torch.manual_seed(0)
    G, D = build_networks(cfg, (3, size, size), "ae")
    x = G(torch.randn(2, cfg.z_dim))
    assert x.shape == (2, 3, size, size) and float(x.detach().abs().max()) <= 1.0
    energy, code = D(x)
    assert energy.shape == (2,) and code.shape[0] == 2
    assert D.reconstruct(x).shape == x.shape


def test_noise_planes_at_every_layer_after_the_first_and_seeded_sampling():
    G = ConvGenerator(16, 3, 128, 8, noise_planes=2)
    planes = [m for m in G.modules() if isinstance(m, NoisePlanes)]
    assert len(planes) == len(generator_channels(128, 8))  # before each upsampling and before the output
    first = G.net[0]
    assert first.in_channels == 16  # the first layer takes the noise vector alone
    G.eval()
    z = torch.randn(2, 16)
    a, b = G(z), G(z)
    assert not torch.equal(a, b)  # the planes add randomness beyond z
    with seeded_noise(G, 5):
        c = G(z)
    state = torch.get_rng_state()
    with seeded_noise(G, 5):
        d = G(z)
    assert torch.equal(c, d) and torch.equal(state, torch.get_rng_state())  # the global RNG is restored


def test_conv_d_parameters_and_mlp_flops_by_hand():
    # The paper's 64-px auto-encoder, 3 channels: encoder (64)4c2s-(128)4c2s-(256)4c2s with batch norm after the
    # second and third convolutions, decoder (128)4c2s-(64)4c2s-(3)4c2s with batch norm after the hidden ones.
    cfg = resolve(apply_overrides(from_preset("celeba-64"), {"data": "folder"}))
    d = describe_networks(cfg, (3, 64, 64), "ae")
    conv = lambda i, o: i * o * 16 + o  # noqa: E731
    by_hand = (
        conv(3, 64)
        + conv(64, 128)
        + 2 * 128
        + conv(128, 256)
        + 2 * 256
        + conv(256, 128)
        + 2 * 128
        + conv(128, 64)
        + 2 * 64
        + conv(64, 3)
    )
    assert d["params_d"] == by_hand == 1318659
    # A tiny MLP on 2-D points, batch 8: G 2-4-2, D 2-3-2. Matrix products only (2 M K N each):
    # D update: G forward 256 (no grad) + two D forwards 2 x 192 + two D backwards 2 x (192 + 96: no gradient
    # for the data) = 1216; G update: G forward 256 + D forward 192 + D backward 192 (inputs only) + G backward
    # 256 + 128 (no gradient for z) = 1024.
    tiny = resolve(
        apply_overrides(
            from_preset("ring"),
            {"z_dim": 2, "g_layers": 2, "g_size": 4, "d_layers": 2, "d_size": 3, "batch_size": 8, "batch_norm": False},
        )
    )
    assert describe_networks(tiny, (2,), "ae") == {"params_g": 22, "params_d": 17, "flops_per_step": 2240}


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """Eight RGB images of assorted sizes (the presets resize and centre-crop them)."""
    root = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(0)
    for i, (w, h) in enumerate([(300, 260), (256, 256), (280, 400), (512, 300)] * 2):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(root / f"im{i}.png")
    return root


@pytest.mark.parametrize(
    "preset, size, batch", [("celeba-64", 64, 4), ("imagenet-128", 128, 4), ("imagenet-256", 256, 2)]
)
def test_image_presets_train_on_a_folder_and_sample_their_resolution(
    tmp_path, image_folder, capsys, preset, size, batch
):
    out = tmp_path / preset
    code = main(
        [
            "train",
            "--preset",
            preset,
            "--data",
            str(image_folder),
            "--out",
            str(out),
            "--steps",
            "2",
            "--no-progress",
            "--set",
            f"batch_size={batch}",
            "--set",
            "g_channels=8",
            "--set",
            "d_channels=8",
            "--set",
            "n_grid=4",
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert json.loads((out / "data.json").read_text())["sample_shape"] == [3, size, size]
    x = sample_from_run(out, 3, seed=1)
    assert x.shape == (3, 3, size, size) and x.dtype == np.uint8
    if preset != "celeba-64":  # noise planes: the same seed gives the same images
        assert np.array_equal(x, sample_from_run(out, 3, seed=1))
        assert not np.array_equal(x, sample_from_run(out, 3, seed=2))


def test_image_preset_without_data_and_unsupported_resolution_are_one_error_line(tmp_path, capsys):
    # Training needs the folder; --dry-run (only the cost) does not, and says what training will need.
    assert main(["train", "--preset", "celeba-64", "--out", str(tmp_path / "a"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pass --data FOLDER" in err[0]
    assert main(["train", "--preset", "celeba-64", "--out", str(tmp_path / "a"), "--dry-run"]) == 0
    assert "(pass --data FOLDER, a folder of images, to train)" in capsys.readouterr().err
    assert (
        main(["train", "--preset", "mnist-conv", "--set", "image_size=96", "--out", str(tmp_path / "b"), "--dry-run"])
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "conv nets support image_size 28, 32, 64, 128 or 256, got 96" in err[0]


def test_dry_run_reports_parameters_and_flops(tmp_path, capsys):
    assert (
        main(["train", "--preset", "imagenet-128", "--data", str(tmp_path), "--dry-run", "--out", str(tmp_path / "r")])
        == 0
    )
    err = capsys.readouterr().err
    cfg = resolve(apply_overrides(from_preset("imagenet-128"), {"data": str(tmp_path)}))
    d = describe_networks(cfg, (3, 128, 128), "ae")
    assert (
        f"G {d['params_g'] / 1e6:.2f} M parameters, D {d['params_d'] / 1e6:.2f} M; "
        f"{d['flops_per_step'] / 1e9:.1f} GFLOP per training step at batch 64"
    ) in err
    assert not (tmp_path / "r").exists()


def _tiny_image_trainer(**kw):
    from ebgan.data import Dataset
    from ebgan.train import Trainer

    x = torch.arange(6 * 8 * 8, dtype=torch.int64).remainder(256).to(torch.uint8).reshape(6, 1, 8, 8)
    cfg = resolve(
        apply_overrides(
            from_preset("mnist"),
            {"g_layers": 2, "g_size": 8, "d_layers": 2, "d_size": 8, "batch_size": 3, "num_threads": 1, **kw},
        )
    )
    return Trainer(cfg, Dataset("tiny", "image", x, None)), x


def test_random_crops_are_windows_at_offsets_drawn_from_the_data_generator():
    trainer, x = _tiny_image_trainer(crop_size=4)
    assert trainer.sample_shape == (1, 4, 4) and trainer.G(torch.randn(2, 100)).shape == (2, 1, 4, 4)
    gen = torch.Generator()
    gen.set_state(trainer.gen_data.get_state())
    out = trainer.augment(x[:3])
    top, left = torch.randint(5, (3,), generator=gen), torch.randint(5, (3,), generator=gen)
    for i in range(3):
        t, l = int(top[i]), int(left[i])
        assert torch.equal(out[i], x[i, :, t : t + 4, l : l + 4])


def test_flips_mirror_the_images_drawn_for_it():
    trainer, x = _tiny_image_trainer(flip=True)
    gen = torch.Generator()
    gen.set_state(trainer.gen_data.get_state())
    out = trainer.augment(x[:3])
    flip = torch.rand(3, generator=gen) < 0.5
    for i in range(3):
        assert torch.equal(out[i], x[i].flip(-1) if flip[i] else x[i])


def test_lsun_preset_trains_on_64_pixel_crops_of_96_pixel_images(tmp_path, image_folder, capsys):
    out = tmp_path / "lsun"
    code = main(
        [
            "train",
            "--preset",
            "lsun-64",
            "--data",
            str(image_folder),
            "--out",
            str(out),
            "--steps",
            "2",
            "--no-progress",
            "--set",
            "batch_size=4",
            "--set",
            "g_channels=8",
            "--set",
            "d_channels=8",
            "--set",
            "n_grid=4",
            "--set",
            "flip=true",
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert json.loads((out / "data.json").read_text())["sample_shape"] == [3, 64, 64]
    assert sample_from_run(out, 2).shape == (2, 3, 64, 64)
    assert (
        main(
            [
                "train",
                "--preset",
                "lsun-64",
                "--data",
                str(image_folder),
                "--out",
                str(tmp_path / "x"),
                "--set",
                "crop_size=128",
                "--dry-run",
            ]
        )
        == 2
    )
    assert "crop_size (128) must not exceed image_size (96)" in capsys.readouterr().err


def test_stacked_mnist_preset_trains_on_three_channel_digits(tmp_path, data_root, capsys):
    """The Stacked MNIST preset: 3 x 28 x 28 images from ../shared/data, samples scored per channel."""
    out = tmp_path / "stacked"
    code = main(
        [
            "train",
            "--preset",
            "stacked-mnist",
            "--data-root",
            str(data_root),
            "--out",
            str(out),
            "--steps",
            "2",
            "--no-progress",
            "--set",
            "n_grid=4",
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert json.loads((out / "data.json").read_text())["sample_shape"] == [3, 28, 28]
    x = sample_from_run(out, 5, seed=1)
    assert x.shape == (5, 3, 28, 28) and x.dtype == np.uint8
    cfg = from_preset("stacked-mnist")
    assert (cfg.channels, cfg.margin, cfg.arch) == (3, 17.0, "conv")
