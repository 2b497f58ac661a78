"""Figures: what each plot draws (lines, markers, colours, layout), inspected on the matplotlib Figure itself.

The ``*_figure`` builders return the Figure the writers save; the sweep report's writers are checked by
capturing the figures ``report._save`` is given.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from matplotlib.colors import to_rgba
from PIL import Image
from torch import Tensor, nn

from ebgan import plots
from ebgan.config import apply_overrides, from_preset, resolve
from ebgan.images import TITLE_BAND, TITLED_MIN_WIDTH, image_grid, save_grid
from ebgan.objectives import make_objective
from ebgan.sweep import report

ALL = ["ebgan", "gan", "nsgan", "wgan", "wgan-gp", "lsgan", "loss-sensitive", "began", "hinge"]
NON_ENERGY = ["gan", "nsgan", "wgan", "wgan-gp", "lsgan", "loss-sensitive", "hinge"]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plots._plt().close("all")


def ring_cfg(loss: str, **kw):
    small = dict(
        loss=loss,
        steps=20,
        g_size=32,
        d_size=32,
        batch_size=64,
        device="cpu",
        pt_weight=0.1,
        margin=1.0,
        lr_schedule="constant",
    )
    small.update(kw)
    return resolve(apply_overrides(from_preset("ring"), small))


class ScoreD(nn.Module):
    """``x -> (x[:, 0], x)``: fixed outputs, differentiable in ``x`` (the penalties need that)."""

    energy = "l1"

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        flat = x.flatten(1)
        return flat[:, 0], flat


def logged_keys(loss: str) -> list[str]:
    """The keys a training step of ``loss`` logs (besides step and time), from the objective itself, plus what
    Trainer.train_step adds (loss_d, loss_g, and the margin for ebgan)."""
    obj = make_objective(ring_cfg(loss))
    real = torch.tensor([[1.0, 0.0], [3.0, 0.0]])
    fake = torch.tensor([[0.0, 0.0], [2.0, 0.0]], requires_grad=True)
    _, d_stats = obj.d_loss(ScoreD(), real, fake.detach(), 0)
    _, g_stats = obj.g_loss(ScoreD(), fake, 0)
    return ["loss_d", "loss_g", *d_stats, *g_stats] + (["margin"] if loss == "ebgan" else [])


def rows_for(keys: list[str], n: int) -> list[dict]:
    """``n`` rows at steps 10, 20, ...; key ``i`` has the value ``i + step / 1000`` (all distinct)."""
    return [
        {"step": 10 * (j + 1), "time": 0.5 * j, **{k: i + (10 * (j + 1)) / 1000 for i, k in enumerate(keys)}}
        for j in range(n)
    ]


def lines_by_label(fig) -> dict[str, list]:
    out: dict[str, list] = {}
    for ax in fig.axes:
        for line in ax.get_lines():
            out.setdefault(line.get_label(), []).append(line)
    return out


# --------------------------------------------------------------------------------------------- training curves
@pytest.mark.parametrize("loss", NON_ENERGY)
def test_training_curves_draw_the_d_outputs_of_every_non_energy_loss(loss):
    keys = logged_keys(loss)
    assert "d_real" in keys and "d_fake" in keys
    rows = rows_for(keys, 20)
    fig = plots.training_curves_figure(rows, ring_cfg(loss))
    left = fig.axes[0]
    labels = [line.get_label() for line in left.get_lines()]
    assert labels == ["real: D(x)", "fake: D(G(z))"]
    real, fake = left.get_lines()
    assert list(real.get_xdata()) == list(range(10, 201, 10))
    assert list(real.get_ydata()) == [r["d_real"] for r in rows]
    assert list(fake.get_ydata()) == [r["d_fake"] for r in rows]
    assert to_rgba(real.get_color()) != to_rgba(fake.get_color())
    assert "no" not in " ".join(t.get_text() for t in left.texts)  # no "nothing logged" placeholder
    assert left.get_legend() is not None


@pytest.mark.parametrize("loss", ALL)
def test_training_curves_plot_every_value_each_loss_logs(loss):
    keys = logged_keys(loss)
    rows = rows_for(keys, 15)
    fig = plots.training_curves_figure(rows, ring_cfg(loss))
    drawn = [list(line.get_ydata()) for ax in fig.axes for line in ax.get_lines()]
    for key in keys:
        assert [r[key] for r in rows] in drawn, f"{loss}: {key} is logged but not plotted"
    assert len(drawn) == len(keys)  # each once
    extra = [k for k in keys if k not in plots._D_KEYS and k not in ("loss_d", "loss_g", "margin")]
    assert len(fig.axes) == (3 if extra else 2)
    if extra:
        assert [line.get_label() for line in fig.axes[2].get_lines()] == extra


def test_training_curves_ebgan_panel_has_energies_and_margin():
    rows = rows_for(logged_keys("ebgan"), 15)
    fig = plots.training_curves_figure(rows, ring_cfg("ebgan"))
    left = fig.axes[0]
    assert [line.get_label() for line in left.get_lines()] == ["real: D(x)", "fake: D(G(z))", "margin m"]
    assert left.get_lines()[2].get_linestyle() == "--"
    assert left.get_title().startswith("mean energy per sample")
    assert fig.axes[2].get_lines()[0].get_label() == "pt"


@pytest.mark.parametrize("loss", ["ebgan", "wgan-gp"])
def test_a_single_logged_row_gives_visible_points(loss):
    rows = rows_for(logged_keys(loss), 1)
    fig = plots.training_curves_figure(rows, ring_cfg(loss))
    lines = [line for ax in fig.axes for line in ax.get_lines()]
    assert len(lines) == len(logged_keys(loss))
    for line in lines:
        assert len(line.get_xdata()) == 1
        assert line.get_marker() == "o" and line.get_markersize() > 0, line.get_label()


def test_many_points_have_no_markers_few_have():
    keys = ["loss_d", "loss_g", "d_real", "d_fake"]
    many = plots.training_curves_figure(rows_for(keys, plots.FEW_POINTS + 1), ring_cfg("gan"))
    few = plots.training_curves_figure(rows_for(keys, plots.FEW_POINTS), ring_cfg("gan"))
    assert {line.get_marker() for ax in many.axes for line in ax.get_lines()} == {"None"}
    assert {line.get_marker() for ax in few.axes for line in ax.get_lines()} == {"o"}


def test_training_curves_without_rows_warn_nothing_and_write(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plots.training_curves([], ring_cfg("gan"), tmp_path / "energy.png")
        plots.training_curves(rows_for(["loss_d", "loss_g"], 3), ring_cfg("gan"), tmp_path / "energy2.png")
    assert Image.open(tmp_path / "energy.png").size[0] > 500


def test_pretraining_and_lapgan_level_losses_are_plotted():
    rows = [
        {"step": 1, "pretrain/energy_real": 0.5},
        {"step": 2, "pretrain/energy_real": 0.25},
        {"step": 3, "loss_d": 1.0, "loss_g": 2.0, "loss_d/level0": 0.4, "loss_g/level1": 0.6},
    ]
    fig = plots.training_curves_figure(rows, ring_cfg("nsgan"))
    lines = lines_by_label(fig)
    assert list(lines["real: D(x), pre-training"][0].get_ydata()) == [0.5, 0.25]
    assert [line.get_label() for line in fig.axes[1].get_lines()] == [
        "loss_d",
        "loss_g",
        "loss_d/level0",
        "loss_g/level1",
    ]
    assert len(fig.axes) == 2


# --------------------------------------------------------------------------------------------- 2-D plots
class RadialD(nn.Module):
    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return (x.norm(dim=1) - 1).abs(), x


def ring_points(n: int, radius: float = 1.0) -> Tensor:
    a = torch.linspace(0, 6.28, n)
    return radius * torch.stack([a.cos(), a.sin()], 1)


def test_energy_landscape_fills_the_axes_and_marks_real_points_visibly():
    real = ring_points(200)
    fake = ring_points(200, radius=2.0)  # outside the real data's range: the landscape widens to show it
    fig = plots.energy_landscape_figure(RadialD(), real, fake, title="wgan-gp on ring", resolution=50)
    ax = fig.axes[0]
    (im,) = ax.get_images()
    x0, x1, y0, y1 = im.get_extent()
    assert ax.get_xlim() == (x0, x1) and ax.get_ylim() == (y0, y1)  # no margin inside the axes
    assert x1 > 2.0 and y1 > 2.0 and x0 == -x1
    real_pts, fake_pts = ax.collections
    assert real_pts.get_label() == "real" and fake_pts.get_label() == "generated"
    assert tuple(real_pts.get_facecolor()[0]) == to_rgba("black")
    assert tuple(real_pts.get_edgecolor()[0]) == to_rgba("white")
    assert tuple(fake_pts.get_facecolor()[0][:3]) == to_rgba("tab:red")[:3]
    assert ax.get_title() == "wgan-gp on ring"


def test_energy_landscape_ignores_far_outliers_of_the_generator():
    real = ring_points(200)
    fake = torch.cat([ring_points(199), torch.tensor([[1e6, 1e6]])])
    fig = plots.energy_landscape_figure(RadialD(), real, fake, resolution=20)
    lim = 1.3 * float(real.abs().max()) + 0.1
    assert fig.axes[0].get_xlim()[1] == pytest.approx(lim * (1 + 1 / 19))


def test_scatter_points_title():
    fig = plots.scatter_points_figure(ring_points(10), ring_points(10, 0.5), title="ebgan on ring, step 100")
    assert fig.axes[0].get_title() == "ebgan on ring, step 100"
    assert plots.scatter_points_figure(ring_points(10), ring_points(10)).axes[0].get_title() == ""


# --------------------------------------------------------------------------------------------- sample grids
def test_save_grid_with_a_title_keeps_the_grid_pixels_under_a_title_band(tmp_path):
    imgs = torch.randint(0, 256, (10, 1, 28, 28), dtype=torch.uint8)
    grid = image_grid(imgs, nrow=5)  # 152 x 62
    save_grid(imgs, tmp_path / "t.png", nrow=5, title="ebgan on mnist, step 1000")
    out = Image.open(tmp_path / "t.png")
    scale = -(-TITLED_MIN_WIDTH // grid.width)
    assert scale == 4 and out.mode == "L"
    assert out.size == (grid.width * scale, grid.height * scale + TITLE_BAND)
    a = np.asarray(out)
    up = np.asarray(grid.resize((grid.width * scale, grid.height * scale), Image.Resampling.NEAREST))
    np.testing.assert_array_equal(a[TITLE_BAND:], up)  # the grid is pixel-exact below the band
    band = a[:TITLE_BAND]
    assert band.min() < 80 and (band == 255).mean() > 0.8  # dark text on white


def test_save_grid_title_rgb_and_no_title_unchanged(tmp_path):
    imgs = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    save_grid(imgs, tmp_path / "plain.png")
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "plain.png")), np.asarray(image_grid(imgs)))
    save_grid(imgs, tmp_path / "t.png", title="x")
    out = Image.open(tmp_path / "t.png")
    assert out.mode == "RGB" and out.size == (22 * 22, 22 * 22 + TITLE_BAND)


# --------------------------------------------------------------------------------------------- sweep report
def test_method_colors_fixed_and_distinct():
    assert report.method_colors(["ebgan", "gan", "ebgan-pt", "gan-minimax"]) == {
        "gan": "tab:red",
        "gan-minimax": "tab:orange",
        "ebgan": "tab:blue",
        "ebgan-pt": "tab:green",
    }
    many = ["gan", "ebgan", "wgan-gp", "hinge", "lsgan", "nsgan", "began"]
    colors = report.method_colors(many)
    assert len(set(colors.values())) == len(many)
    assert colors == report.method_colors(list(reversed(many)))  # order of the methods does not matter
    alone = report.method_colors(["wgan-gp"])["wgan-gp"]
    assert alone in report._SPARE_COLORS
    assert report.method_colors(["wgan-gp", "ebgan", "gan"])["wgan-gp"] == alone  # the paper's colours are not spare


def write_sweep(tmp_path, rows, methods):
    (tmp_path / "sweep.json").write_text(
        json.dumps(
            {"grid": "test", "spec": {"preset": "mnist"}, "steps": 10, "seed": 0, "methods": methods, "sample": None}
        )
    )
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def gan_sweep_rows():
    rows = []
    for i, v in enumerate([6.0, 7.0, 8.5, 2.0]):
        rows.append(
            {
                "method": "ebgan",
                "setting_id": f"e{i}",
                "g_layers": 2 + i,
                "d_layers": 2,
                "status": "ok",
                "is": v,
                "paper_score": v / 4,
                "margin": [1.0, 8.0][i % 2],
            }
        )
    for i, (v, od, lr) in enumerate(
        [(1.0, "sgd", 0.01), (5.5, "adam", 0.001), (6.0, "adam", 0.01), (3.0, "sgd", 0.001)]
    ):
        rows.append(
            {
                "method": "gan",
                "setting_id": f"g{i}",
                "g_layers": 3,
                "d_layers": 3,
                "optim_d": od,
                "optim_g": "adam",
                "lr": lr,
                "status": "ok",
                "is": v,
                "paper_score": v / 4,
                "margin": 1.0,
            }
        )
    return rows


@pytest.fixture
def captured(monkeypatch):
    figs: dict[str, object] = {}

    def capture(fig, path):
        figs[path.name] = fig

    monkeypatch.setattr(report, "_save", capture)
    return figs


def _step_hists(ax) -> dict[str, object]:
    """The labelled step outlines of a histogram panel, by method (the label up to its " (n=...)")."""
    return {p.get_label().split(" (")[0]: p for p in ax.patches if not (p.get_label() or "_").startswith("_")}


def test_report_uses_one_colour_per_method_in_every_figure(tmp_path, captured):
    write_sweep(tmp_path, gan_sweep_rows(), ["gan", "ebgan"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report.write_report(tmp_path)
    assert sorted(captured) == ["fig2_is.png", "fig2_paper_score.png", "fig3_gan.png", "fig9_margin.png"]
    want = {"gan": to_rgba("tab:red"), "ebgan": to_rgba("tab:blue")}
    seen = {"gan": 0, "ebgan": 0}
    for name, fig in captured.items():
        for ax in fig.axes:
            for m, patch in _step_hists(ax).items():
                assert to_rgba(patch.get_edgecolor()) == want[m], (name, m)
                seen[m] += 1
            for line in ax.get_lines():
                assert to_rgba(line.get_color()) == want[line.get_label()], (name, line.get_label())
                seen[line.get_label()] += 1
    # fig2: 3 panels x 2 figures; fig3: 2 pairs x 2 lrs = 4 panels; fig9: 1 line each.
    assert seen == {"gan": 3 + 3 + 4 + 1, "ebgan": 3 + 3 + 4 + 1}


def test_fig2_histograms_of_identical_scores_are_both_drawn_distinctly():
    rows = [
        {"method": m, "setting_id": f"{m}{i}", "status": "ok", "is": v}
        for m in ("gan", "ebgan")
        for i, v in enumerate((2.0, 5.0, 5.0, 7.0))
    ]  # identical histograms
    fig = report.fig2_figure(rows, ["gan", "ebgan"], "is")
    (ax,) = fig.axes
    steps = _step_hists(ax)
    assert sorted(steps) == ["ebgan", "gan"]
    gan, ebgan = steps["gan"], steps["ebgan"]
    assert to_rgba(gan.get_edgecolor()) == to_rgba("tab:red")
    assert to_rgba(ebgan.get_edgecolor()) == to_rgba("tab:blue")
    assert gan.get_linestyle() != ebgan.get_linestyle()
    assert gan.get_linewidth() > ebgan.get_linewidth()  # the first outline shows around the later one
    assert ax.patches.index(gan) < ax.patches.index(ebgan)
    fills = [p for p in ax.patches if (p.get_label() or "_").startswith("_") and p.get_fill()]
    assert len(fills) == 2 and all(0 < p.get_alpha() < 0.5 for p in fills)  # translucent fills
    np.testing.assert_array_equal(gan.get_xy(), ebgan.get_xy())  # the same outline, both visible by style


def test_fig3_titles_do_not_overlap_the_row_above(tmp_path):
    fig = report.fig3_figure(gan_sweep_rows(), "gan", ["ebgan"], "is")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    axes = np.array(fig.axes).reshape(2, 2)
    for j in range(2):
        title = axes[1][j].title.get_window_extent(renderer)
        xlabel = axes[0][j].xaxis.label.get_window_extent(renderer)
        assert title.y1 < xlabel.y0  # display y grows upwards: the lower title ends below the upper x-label
    assert axes[0][0].get_title() == "gan: D adam, G adam, lr 0.01"


def test_fig3_is_skipped_without_gan_runs(tmp_path):
    rows = [r for r in gan_sweep_rows() if r["method"] == "ebgan"]
    assert report.fig3_figure(rows, "gan", ["ebgan"], "is") is None
    assert report.fig3(rows, "gan", ["ebgan"], "is", tmp_path / "fig3_gan.png") is False
    assert not (tmp_path / "fig3_gan.png").exists()


def test_report_without_gan_warns_nothing(tmp_path):
    rows = [
        {
            "method": m,
            "setting_id": f"{m}{mg}",
            "margin": mg,
            "status": "ok",
            "is": v,
            "g_layers": 5,
            "d_layers": 5,
        }  # nLayer 5: the nLayer <= 4 and <= 3 panels are empty
        for m, scores in (("ebgan", (2.0, 6.0, 5.0)), ("ebgan-pt", (3.0, 7.0, 4.0)))
        for mg, v in zip((1.0, 8.0, 32.0), scores)
    ]
    write_sweep(tmp_path, rows, ["ebgan", "ebgan-pt"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "No artists with labels found to put in legend" would raise
        report.write_report(tmp_path)
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["fig2_is.png", "fig9_margin.png"]


def test_empty_histogram_panel_has_no_legend():
    rows = [{"method": "ebgan", "setting_id": "e", "status": "ok", "is": 5.0, "g_layers": 5, "d_layers": 5}]
    fig = report.fig2_figure(rows, ["ebgan"], "is")
    assert [ax.get_legend() is not None for ax in fig.axes] == [True, False, False]
    assert [t.get_text() for t in fig.axes[1].texts] == ["no finished runs"]
