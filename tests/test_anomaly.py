"""Anomaly detection: subsets, the unlearning term, threshold calibration, `ebgan score` and EnergyDetector."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from test_cli import assert_one_line_error, run_cli
from torch.testing import assert_close

from ebgan import losses
from ebgan.anomaly import EnergyDetector, score_run
from ebgan.cli import main
from ebgan.config import Config, apply_overrides, parse_classes, resolve
from ebgan.data import (
    Dataset,
    n_known_anomalies,
    sample_mixture,
    select_classes,
    split_holdout,
    training_data,
)
from ebgan.energy import energies, threshold_at_fpr
from ebgan.errors import EbganError
from ebgan.train import Trainer, train

# ---------------------------------------------------------------------------------------------- pure parts


def test_unlearning_loss_value_and_gradient_by_hand():
    e = torch.tensor([2.0, 12.0, 9.5], requires_grad=True)
    loss = losses.unlearning_loss(e, 10.0)
    assert_close(loss, torch.tensor((8.0 + 0.0 + 0.5) / 3))
    loss.backward()
    # d/dD(a_i) of mean max(0, m - D(a_i)): -1/N below the margin, 0 above it.
    assert_close(e.grad, torch.tensor([-1 / 3, 0.0, -1 / 3]))
    with pytest.raises(ValueError, match="1-D"):
        losses.unlearning_loss(torch.ones(2, 1), 1.0)


def test_threshold_at_fpr_on_constructed_energies():
    e = np.random.default_rng(0).permutation(100).astype(float)  # 0..99, shuffled
    assert threshold_at_fpr(e, 0.05) == 94.0  # 95..99 above: exactly 5 %
    assert threshold_at_fpr(e, 0.29) == 70.0  # 0.29 * 100 is 28.999... in floating point: still 29 above
    assert threshold_at_fpr(e, 0.001) == 99.0  # fewer than one sample's share: nothing flagged
    for fpr in (0.01, 0.1, 0.25, 0.5):
        t = threshold_at_fpr(e, fpr)
        assert (e > t).mean() == pytest.approx(fpr)
    # Ties: never more than the share above the threshold.
    tied = np.array([1.0] * 10 + [2.0] * 10)
    assert threshold_at_fpr(tied, 0.05) == 2.0 and (tied > 2.0).sum() == 0
    with pytest.raises(EbganError, match="false-positive rate"):
        threshold_at_fpr(e, 0.0)
    with pytest.raises(EbganError, match="at least one"):
        threshold_at_fpr(np.array([]), 0.1)


def test_anomaly_scores_energy_per_unit_of_ink_by_hand():
    from ebgan.energy import anomaly_scores, ink

    x = torch.zeros(3, 1, 2, 2, dtype=torch.uint8)
    x[0, 0, 0, 0] = 255  # ink 1
    x[1] = 255  # ink 4
    x[2, 0, 0, :] = 51  # ink 0.4: floored at 1
    assert_close(ink(x), torch.tensor([1.0, 4.0, 0.4], dtype=torch.float64))
    e = torch.tensor([2.0, 6.0, 3.0])
    assert_close(anomaly_scores(e, x, "energy"), e.double())
    assert_close(anomaly_scores(e, x, "energy/ink", "l2"), torch.tensor([2.0, 3.0, 3.0], dtype=torch.float64))
    assert_close(anomaly_scores(e, x, "energy/ink", "sse"), torch.tensor([2.0, 1.5, 3.0], dtype=torch.float64))
    with pytest.raises(EbganError, match="anomaly score must be one of"):
        anomaly_scores(e, x, "ink")
    with pytest.raises(EbganError, match="uint8"):
        ink(x.float())


def test_parse_classes_and_config_checks():
    assert parse_classes("3") == [3]
    assert parse_classes(" 7, 1,7") == [1, 7]
    for bad in ("", "a", "-1", "1;2"):
        with pytest.raises(EbganError, match="classes"):
            parse_classes(bad)
    ok = apply_overrides(Config(), {"classes": "3", "known_anomalies": "classes:5"})
    resolve(ok)
    for over, msg in (
        ({"known_anomalies": "classes:5"}, "needs classes"),
        ({"classes": "3", "known_anomalies": "classes:3"}, "share labels"),
        ({"classes": "3", "known_anomalies": "classes:5", "loss": "nsgan"}, "loss=ebgan"),
        ({"holdout": 1.0}, "holdout"),
        ({"threshold_fpr": 0.0}, "threshold_fpr"),
        ({"anomaly_share": 1.0}, "anomaly_share"),
        ({"steps": 0}, "pretrain_steps > 0"),
    ):
        with pytest.raises(EbganError, match=msg):
            resolve(apply_overrides(Config(), over))
    resolve(apply_overrides(Config(), {"steps": 0, "pretrain_steps": 5}))  # an auto-encoder alone is valid


def _labelled(n=40):
    x = torch.arange(n * 2, dtype=torch.float32).view(n, 2)
    return Dataset("toy", "points", x, torch.arange(n) % 4)


def test_select_classes_keeps_order_and_refuses_missing_labels():
    ds = _labelled()
    sub = select_classes(ds, [1, 3])
    assert sub.labels.tolist() == [1, 3] * 10
    assert_close(sub.data, ds.data[(ds.labels == 1) | (ds.labels == 3)])
    with pytest.raises(EbganError, match=r"label\(s\) \[7\].*0\.\.3"):
        select_classes(ds, [1, 7])
    with pytest.raises(EbganError, match="no labels"):
        select_classes(Dataset("f", "image", torch.zeros(2, 1, 4, 4, dtype=torch.uint8)), [0])


def test_split_holdout_is_seeded_disjoint_and_sized():
    ds = _labelled(40)
    kept, held = split_holdout(ds, 0.25, seed=3)
    assert len(kept) == 30 and len(held) == 10
    rows = {tuple(r) for r in kept.data.tolist()} | {tuple(r) for r in held.tolist()}
    assert len(rows) == 40  # disjoint and complete
    kept2, held2 = split_holdout(ds, 0.25, seed=3)
    assert_close(held, held2)
    _, held3 = split_holdout(ds, 0.25, seed=4)
    assert not torch.equal(held, held3)
    assert split_holdout(ds, 0.0, 0) == (ds, None)


def test_training_data_deep_sad_proportion():
    x = torch.randint(0, 256, (2000, 1, 4, 4), dtype=torch.uint8)
    ds = Dataset("toy", "image", x, torch.arange(2000) % 10)  # 200 per class
    cfg = apply_overrides(
        Config(), {"classes": "3", "holdout": 0.1, "known_anomalies": "classes:5", "anomaly_share": 0.05}
    )
    td = training_data(cfg, ds)
    assert len(td.train) == 180 and len(td.holdout) == 20
    # gamma = m / (n + m) = 0.05 with n = 180 normal training samples: m = round(0.05 * 180 / 0.95) = 9
    assert n_known_anomalies(0.05, 180) == 9 and len(td.anomalies) == 9
    fives = {bytes(v.numpy()) for v in x[torch.arange(2000) % 10 == 5]}
    assert all(bytes(a.numpy()) in fives for a in td.anomalies)
    assert n_known_anomalies(0.01, 5940) == 60


# ------------------------------------------------------------------------------------------------- training


def _ring_cfg(**over):
    base = dict(
        data="ring",
        z_dim=2,
        g_layers=2,
        g_size=16,
        d_layers=2,
        d_size=16,
        batch_norm=False,
        margin=0.5,
        batch_size=32,
        steps=30,
        num_threads=1,
        log_every=5,
        sample_every=1000,
        ckpt_every=1000,
        n_grid=64,
    )
    return resolve(apply_overrides(Config(), {**base, **over}))


def test_unlearning_pushes_known_anomalies_above_the_margin():
    ring, _ = sample_mixture("ring", 2000, torch.Generator().manual_seed(0))
    ds = Dataset("ring", "points", ring)
    jitter = 0.01 * torch.randn(2, 2, generator=torch.Generator().manual_seed(1))
    anomalies = torch.tensor([[3.0, 3.0], [-3.0, 2.5]]) + jitter
    result = {}
    for unlearn in (False, True):
        cfg = _ring_cfg(steps=0, pretrain_steps=300, margin=2.0, lr_d=3e-3)
        t = Trainer(cfg, ds, anomalies=anomalies if unlearn else None)
        while t.step < t.total_steps:
            stats = t.train_step()
        result[unlearn] = energies(t.D, anomalies)
        if unlearn:
            assert "pretrain/unlearn" in stats and "pretrain/energy_anomaly" in stats
    assert (result[False] < 1.0).all(), result  # an auto-encoder alone reconstructs them well
    assert (result[True] > 1.9).all(), result  # unlearning holds them near or above the margin m = 2


def test_anomaly_batches_resume_exactly(tmp_path):
    ring, _ = sample_mixture("ring", 500, torch.Generator().manual_seed(0))
    ds = Dataset("ring", "points", ring)
    anomalies = torch.randn(5, 2, generator=torch.Generator().manual_seed(2)) * 3
    cfg = _ring_cfg(steps=12, pretrain_steps=4)
    a = Trainer(cfg, ds, anomalies=anomalies)
    for _ in range(16):
        a.train_step()
    b = Trainer(cfg, ds, anomalies=anomalies)
    for _ in range(9):
        b.train_step()
    b.save(tmp_path)
    c = Trainer(cfg, ds, anomalies=anomalies)
    c.load(next((tmp_path / "checkpoints").glob("step-*")))
    for _ in range(7):
        c.train_step()
    for p, q in zip(a.D.parameters(), c.D.parameters()):
        assert_close(p, q, rtol=0, atol=0)


def test_run_with_holdout_writes_threshold_json(tmp_path):
    ring, labels = sample_mixture("ring", 1000, torch.Generator().manual_seed(0))
    cfg = _ring_cfg(steps=20, holdout=0.1, threshold_fpr=0.1, classes="0,1,2,3")
    summary = train(cfg, tmp_path / "run", progress=False, dataset=Dataset("ring", "points", ring, labels))
    calib = json.loads((tmp_path / "run" / "threshold.json").read_text())
    assert calib == summary["threshold"]
    meta = json.loads((tmp_path / "run" / "data.json").read_text())
    kept = int((labels < 4).sum())
    assert meta["n_holdout"] == round(0.1 * kept) and meta["n_train"] == kept - meta["n_holdout"]
    assert meta["classes"] == "0,1,2,3" and calib["n_holdout"] == meta["n_holdout"] and calib["step"] == 20
    # The threshold is the held-out energies' value at the stated rate, recomputed from the saved run.
    _, held = split_holdout(select_classes(Dataset("ring", "points", ring, labels), [0, 1, 2, 3]), 0.1, cfg.seed)
    res = score_run(tmp_path / "run", held.numpy())
    assert calib["threshold"] == threshold_at_fpr(res.energy, 0.1)
    assert res.labels is not None and res.labels.mean() <= 0.1


# ---------------------------------------------------------------------------------------------- the CLI


@pytest.fixture(scope="module")
def oneclass_run(tmp_path_factory):
    from conftest import SHARED_DATA

    if not (SHARED_DATA / "MNIST" / "raw").is_dir():
        pytest.skip("../shared/data/MNIST/raw is not present")
    run = tmp_path_factory.mktemp("oc") / "run"
    code = main(
        [
            "train",
            "--preset",
            "mnist-oneclass",
            "--set",
            "classes=3",
            "--data-root",
            str(SHARED_DATA),
            "--steps",
            "6",
            "--set",
            "pretrain_steps=4",
            "--set",
            "log_every=2",
            "--no-progress",
            "--out",
            str(run),
        ]
    )
    assert code == 0
    return run


def test_cli_score_npy_writes_one_row_per_input(oneclass_run, tmp_path, capsys, data_root):
    from ebgan.data import load_mnist

    x, y = load_mnist(data_root, "test")
    X = x[:50].numpy()
    np.save(tmp_path / "X.npy", X)
    code, out, err = run_cli(capsys, "score", oneclass_run, tmp_path / "X.npy", "-o", tmp_path / "s.csv")
    assert code == 0, err
    rows = list(csv.DictReader((tmp_path / "s.csv").open()))
    assert [r["name"] for r in rows] == [str(i) for i in range(50)]
    assert list(rows[0]) == ["name", "energy", "score", "anomaly"]  # the preset's score is energy/ink
    calib = json.loads((oneclass_run / "threshold.json").read_text())
    assert calib["score"] == "energy/ink"
    e = np.array([float(r["score"]) for r in rows])
    assert [int(r["anomaly"]) for r in rows] == (e > calib["threshold"]).astype(int).tolist()
    assert "wrote" in out and "threshold" in out
    # The CSV's energies are the discriminator's, exactly, and its scores the energies per unit of ink.
    res = score_run(oneclass_run, X)
    raw = np.array([float(r["energy"]) for r in rows])
    assert_close(torch.from_numpy(raw), torch.from_numpy(res.energy), rtol=0, atol=0)
    ink = X.reshape(50, -1).astype(np.float64).sum(1) / 255.0
    assert_close(torch.from_numpy(e), torch.from_numpy(raw / np.sqrt(np.maximum(ink, 1.0))))
    # --score energy: the raw energy, and the run's threshold (calibrated on energy/ink) no longer applies.
    code, _, _ = run_cli(
        capsys, "score", oneclass_run, tmp_path / "X.npy", "-o", tmp_path / "r.csv", "--score", "energy"
    )
    assert code == 0 and (tmp_path / "r.csv").read_text().splitlines()[0] == "name,energy"
    code, _, err = run_cli(
        capsys,
        "score",
        oneclass_run,
        tmp_path / "X.npy",
        "-o",
        tmp_path / "r.csv",
        "--score",
        "energy",
        "--threshold",
        "auto",
    )
    assert_one_line_error(code, err, "is for the score energy/ink, not energy")
    # --contamination flags that share of the inputs; --threshold VALUE is used as given.
    code, out, _ = run_cli(
        capsys, "score", oneclass_run, tmp_path / "X.npy", "-o", tmp_path / "c.csv", "--contamination", "0.1"
    )
    flagged = [int(r["anomaly"]) for r in csv.DictReader((tmp_path / "c.csv").open())]
    assert code == 0 and sum(flagged) == 5
    code, _, _ = run_cli(
        capsys,
        "score",
        oneclass_run,
        tmp_path / "X.npy",
        "-o",
        tmp_path / "t.csv",
        "--threshold",
        str(float(np.median(e))),
    )
    flagged = [int(r["anomaly"]) for r in csv.DictReader((tmp_path / "t.csv").open())]
    assert code == 0 and flagged == (e > np.median(e)).astype(int).tolist()


def test_cli_score_image_folder_names_files(oneclass_run, tmp_path, capsys, data_root):
    from PIL import Image

    from ebgan.data import load_mnist

    x, _ = load_mnist(data_root, "test")
    folder = tmp_path / "imgs"
    (folder / "sub").mkdir(parents=True)
    for i, name in enumerate(["b.png", "a.png", "sub/c.png"]):
        Image.fromarray(x[i, 0].numpy()).save(folder / name)
    code, out, err = run_cli(capsys, "score", oneclass_run, folder, "-o", tmp_path / "f.csv")
    assert code == 0, err
    rows = list(csv.DictReader((tmp_path / "f.csv").open()))
    assert [r["name"] for r in rows] == ["a.png", "b.png", "sub/c.png"]
    # Lossless PNGs of the same digits score as the arrays do.
    res = score_run(oneclass_run, x[[1, 0, 2]].numpy())
    assert_close(
        torch.tensor([float(r["energy"]) for r in rows], dtype=torch.float64),
        torch.from_numpy(res.energy),
        rtol=0,
        atol=0,
    )
    assert_close(
        torch.tensor([float(r["score"]) for r in rows], dtype=torch.float64),
        torch.from_numpy(res.score),
        rtol=0,
        atol=0,
    )


def test_cli_score_bad_inputs_give_one_line(oneclass_run, tmp_path, capsys):
    np.save(tmp_path / "shape.npy", np.zeros((3, 1, 32, 32), dtype=np.uint8))
    np.save(tmp_path / "dtype.npy", np.zeros((3, 1, 28, 28), dtype=np.float32))
    (tmp_path / "empty").mkdir()
    (tmp_path / "notrun").mkdir()
    (tmp_path / "text.npy").write_text("1 2 3")
    good = tmp_path / "good.npy"
    np.save(good, np.zeros((3, 1, 28, 28), dtype=np.uint8))
    cases = [
        ((oneclass_run, tmp_path / "shape.npy"), "got shape [3, 1, 32, 32]"),
        ((oneclass_run, tmp_path / "dtype.npy"), "must be uint8 images"),
        ((oneclass_run, tmp_path / "empty"), "no image files"),
        ((oneclass_run, tmp_path / "text.npy"), "is not a .npy array file"),
        ((oneclass_run, tmp_path / "missing.npy"), "does not exist"),
        ((tmp_path / "notrun", good), "is not a run folder"),
        ((oneclass_run, good, "--contamination", "0.6"), "contamination must be in (0, 0.5]"),
        ((oneclass_run, good, "--contamination", "0"), "contamination must be in (0, 0.5]"),
        ((oneclass_run, good, "--contamination", "0.1", "--threshold", "3"), "not both"),
    ]
    for args, match in cases:
        code, _, err = run_cli(capsys, "score", *args[:2], "-o", tmp_path / "o.csv", *args[2:])
        assert_one_line_error(code, err, match)
    code, _, err = run_cli(capsys, "score", oneclass_run, good, "-o", tmp_path / "o.txt")
    assert_one_line_error(code, err, "-o must name a .csv file")


def test_cli_score_refuses_a_run_without_energy_and_auto_without_calibration(tmp_path, capsys):
    run = tmp_path / "gan"
    assert (
        run_cli(
            capsys,
            "train",
            "--preset",
            "ring",
            "--loss",
            "nsgan",
            "--steps",
            2,
            "--out",
            run,
            "--no-progress",
            "--set",
            "g_size=8",
            "--set",
            "d_size=8",
        )[0]
        == 0
    )
    pts = tmp_path / "p.npy"
    np.save(pts, np.zeros((4, 2), dtype=np.float32))
    code, _, err = run_cli(capsys, "score", run, pts, "-o", tmp_path / "o.csv")
    assert_one_line_error(code, err, "has no energy")
    run = tmp_path / "eb"
    assert (
        run_cli(
            capsys,
            "train",
            "--preset",
            "ring",
            "--steps",
            2,
            "--out",
            run,
            "--no-progress",
            "--set",
            "g_size=8",
            "--set",
            "d_size=8",
        )[0]
        == 0
    )
    code, _, err = run_cli(capsys, "score", run, pts, "-o", tmp_path / "o.csv", "--threshold", "auto")
    assert_one_line_error(code, err, "has no threshold.json")
    code, out, _ = run_cli(capsys, "score", run, pts, "-o", tmp_path / "o.csv")  # no threshold: energies only
    assert code == 0 and (tmp_path / "o.csv").read_text().splitlines()[0] == "name,energy"


def test_cli_train_classes_naming_a_missing_label(tmp_path, capsys, data_root):
    code, _, err = run_cli(
        capsys,
        "train",
        "--preset",
        "mnist-oneclass",
        "--set",
        "classes=12",
        "--data-root",
        data_root,
        "--steps",
        2,
        "--out",
        tmp_path / "r",
        "--no-progress",
    )
    assert_one_line_error(code, err, "label(s) [12]")
    code, _, err = run_cli(capsys, "train", "--preset", "ring", "--set", "classes=x", "--out", tmp_path / "s")
    assert_one_line_error(code, err, "comma-separated integer labels")


# -------------------------------------------------------------------------------------------- the estimator


def test_energy_detector_fit_predict_and_from_run(tmp_path):
    normal, _ = sample_mixture("ring", 1500, torch.Generator().manual_seed(0))
    known = torch.tensor([[2.5, 2.5], [2.6, 2.4], [2.4, 2.6]])
    X = torch.cat([normal, known]).numpy()
    y = np.r_[np.zeros(1500, dtype=int), np.ones(3, dtype=int)]
    det = EnergyDetector(
        "ring",
        contamination=0.05,
        steps=150,
        run_dir=tmp_path / "det",
        overrides={
            "holdout": 0.2,
            "g_size": 32,
            "d_size": 32,
            "num_threads": 1,
            "sample_every": 1000,
            "ckpt_every": 1000,
        },
    )
    assert det.fit(X, y) is det
    assert det.decision_scores_.shape == (1500,) and det.labels_.shape == (1500,)
    meta = json.loads((tmp_path / "det" / "data.json").read_text())
    assert meta["n_anomalies"] == 3 and meta["n_holdout"] == 300
    # threshold_: the contamination quantile of the held-out normal rows' energies.
    from ebgan.data import split_holdout as split

    _, held = split(Dataset("X", "points", torch.from_numpy(X[:1500])), 0.2, 0)
    assert det.threshold_ == threshold_at_fpr(det.decision_function(held.numpy()), 0.05)
    far = np.array([[3.0, -3.0], [-2.5, 0.5], [2.5, 2.5]], dtype=np.float32)  # the last: a known anomaly
    assert det.predict(far).tolist() == [1, 1, 1]
    assert det.decision_function(far).min() > np.median(det.decision_scores_)
    again = EnergyDetector.from_run(tmp_path / "det", threshold=det.threshold_)
    assert_close(
        torch.from_numpy(again.decision_function(X)), torch.from_numpy(det.decision_function(X)), rtol=0, atol=0
    )
    assert again.predict(far).tolist() == [1, 1, 1]
    with pytest.raises(EbganError, match="from_run has no preset"):  # (it was an AttributeError)
        again.fit(X)
    with pytest.raises(EbganError, match="0/1 labels"):
        EnergyDetector("ring", steps=2).fit(X, y[:-1])
    with pytest.raises(EbganError, match="contamination"):
        EnergyDetector("ring", contamination=0.7)
    with pytest.raises(EbganError, match="not fitted"):
        EnergyDetector("ring").decision_function(X)


def test_anomaly_margin_is_constant_and_configurable():
    from ebgan.objectives import make_objective

    class FixedEnergy(torch.nn.Module):
        head = "ae"

        def forward(self, x):
            return x[:, 0], x

    a = torch.tensor([[2.0, 0.0], [12.0, 0.0]])
    decaying = resolve(apply_overrides(Config(), {"margin": 10.0, "margin_schedule": "linear", "steps": 100}))
    loss, stats = make_objective(decaying).anomaly_loss(FixedEnergy(), a, step=100)  # game margin is 0 here
    assert_close(loss, torch.tensor(4.0))  # (10 - 2 + 0) / 2: the starting margin, not the schedule's 0
    assert_close(stats["energy_anomaly"], torch.tensor(7.0))
    own = resolve(apply_overrides(Config(), {"margin": 10.0, "anomaly_margin": 20.0}))
    assert_close(make_objective(own).anomaly_loss(FixedEnergy(), a, step=0)[0], torch.tensor((18.0 + 8.0) / 2))
    with pytest.raises(EbganError, match="has none"):
        make_objective(resolve(apply_overrides(Config(), {"loss": "nsgan"}))).anomaly_loss(FixedEnergy(), a, 0)


def test_validation_auroc_uses_the_runs_held_out_normals_only(tmp_path):
    """Model selection without test data: the held-out normal samples rebuilt from the run's config are the
    ones training left out, and the AUROC is the Mann-Whitney one of the run's scores on them and the given
    anomalies."""
    from ebgan.anomaly import run_holdout, score_run, validation_auroc
    from ebgan.config import apply_overrides, from_preset, resolve
    from ebgan.data import load_dataset, split_holdout
    from ebgan.metrics.scores import auroc
    from ebgan.train import train

    cfg = resolve(
        apply_overrides(
            from_preset("ring"), {"steps": 20, "g_size": 16, "d_size": 16, "holdout": 0.1, "log_every": 10, "seed": 3}
        )
    )
    run = tmp_path / "run"
    train(cfg, run, progress=False)
    held = run_holdout(run)
    _, expected = split_holdout(load_dataset("ring", seed=3), 0.1, 3)
    torch.testing.assert_close(held, expected, rtol=0, atol=0)
    assert len(held) == json.loads((run / "data.json").read_text())["n_holdout"]
    far = np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32) * 3
    val = validation_auroc(run, far)
    e_n, e_a = score_run(run, held).score, score_run(run, far).score
    want = 100 * auroc(
        torch.from_numpy(np.concatenate([e_n, e_a])), torch.cat([torch.zeros(len(e_n)), torch.ones(len(e_a))]).long()
    )
    assert val["auroc"] == pytest.approx(want, abs=0) and val["n_normal"] == len(held) and val["n_anomalies"] == 50
    no_holdout = tmp_path / "nh"
    train(resolve(apply_overrides(cfg, {"holdout": 0.0})), no_holdout, progress=False)
    with pytest.raises(EbganError, match="held nothing out"):
        validation_auroc(no_holdout, far)
