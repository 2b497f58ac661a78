"""Event sequences (ebgan.seq): windows, energies, top-g, unseen keys, the hinge, feedback updates, exact resume,
bad input, raw-log parsing and the detector. Tiny models on small synthetic sessions."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch.testing import assert_close

from ebgan.cli import main
from ebgan.errors import EbganError
from ebgan.seq import (
    MAX_SURPRISE,
    NextKeyLSTM,
    SeqConfig,
    SequenceDetector,
    UpdateSettings,
    Vocab,
    energies,
    load_run,
    read_sessions,
    train_seq,
    update_run,
    windows,
)
from ebgan.seq.data import distinct_windows
from ebgan.seq.run import anomaly_hinge

# Normal sessions: a few patterns with repeats; anomalies break them (a key out of place, a session cut short).
NORMAL = [(1, 2, 3, 4, 5)] * 12 + [(1, 2, 3, 3, 4, 5)] * 6 + [(1, 2, 4, 5)] * 4 + [(2, 1, 3, 4, 5)] * 2
ANOMALOUS = [(1, 2, 5), (1, 5, 2, 3, 4), (1, 2, 3, 4, 5, 5, 5)]


def tiny(**kw) -> SeqConfig:
    # the tests were written against DeepLog's weighting and the max energy; pinned so that the package's
    # defaults (HDFS's validation choice) can move without moving them
    base = dict(
        window=3,
        hidden=8,
        layers=1,
        epochs=30,
        batch=8,
        lr=0.02,
        holdout=0.2,
        fpr=0.05,
        num_threads=1,
        margin=6.0,
        weighting="count",
        energy="max",
        threshold_scale=1.0,
    )
    return SeqConfig(**{**base, **kw})


def fixed_model(n_keys: int, probs: list[float], eos: bool = True) -> NextKeyLSTM:
    """A predictor whose output is ``probs`` whatever the history: every LSTM weight 0 (its output is then
    0), the last layer's weight 0 and its bias ``log probs``."""
    m = NextKeyLSTM(n_keys, hidden=4, layers=2, eos=eos)
    with torch.no_grad():
        for p in m.parameters():
            p.zero_()
        m.fc.bias.copy_(torch.tensor(probs).log())
    return m


def write_lines(path: Path, sessions) -> Path:
    path.write_text("".join(" ".join(map(str, s)) + "\n" for s in sessions))
    return path


# ---------------------------------------------------------------------------------------------------- windows


def test_windows_on_a_hand_made_session():
    vocab = Vocab([22, 5])  # sorted: 5 -> 0, 22 -> 1; unknown 2, padding 3; end of session 2
    assert (vocab.keys, vocab.unk, vocab.pad, vocab.eos) == ([5, 22], 2, 3, 2)
    h, t, s = windows([(5, 22, 5), (22,)], vocab, window=2, eos=True)
    assert h.tolist() == [[3, 3], [3, 0], [0, 1], [1, 0], [3, 3], [3, 1]]
    assert t.tolist() == [0, 1, 0, 2, 1, 2]
    assert s.tolist() == [0, 0, 0, 0, 1, 1]
    h, t, s = windows([(5, 7, 22)], vocab, window=3, eos=False)  # 7 was never seen: input unk, target -1
    assert h.tolist() == [[3, 3, 3], [3, 3, 0], [3, 0, 2]] and t.tolist() == [0, -1, 1] and s.tolist() == [0] * 3
    hd, td, c = distinct_windows([(5, 22, 5)] * 3 + [(5,)], vocab, window=2, eos=True)
    pairs = {(tuple(a), b): n for a, b, n in zip(hd.tolist(), td.tolist(), c.tolist())}
    assert pairs == {((3, 3), 0): 4, ((3, 0), 1): 3, ((0, 1), 0): 3, ((1, 0), 2): 3, ((3, 0), 2): 1}


# --------------------------------------------------------------------------------------------------- energies


def test_energy_values_on_a_model_with_fixed_weights():
    """p = (1/2, 1/4, 1/8, 1/8) for keys 5, 6, 7 and the end: surprises ln 2, ln 4, ln 8 (nats) by hand."""
    vocab = Vocab([5, 6, 7])
    m = fixed_model(3, [0.5, 0.25, 0.125, 0.125])
    sessions = [(5, 6, 7), (5,), (7, 7), (6, 9)]  # 9 is unknown
    e = energies(m, vocab, sessions, window=4, kinds=("max", "sum", "mean", "topg"), g=1)
    ln2 = math.log(2)
    s0 = [ln2, 2 * ln2, 3 * ln2, 3 * ln2]  # 5, 6, 7, end
    s1 = [ln2, 3 * ln2]
    s2 = [3 * ln2, 3 * ln2, 3 * ln2]
    s3 = [2 * ln2, MAX_SURPRISE, 3 * ln2]
    exp = [s0, s1, s2, s3]
    assert_close(e["max"], np.array([max(s) for s in exp]))
    assert_close(e["sum"], np.array([sum(s) for s in exp]))
    assert_close(e["mean"], np.array([sum(s) / len(s) for s in exp]))
    # top-1: only key 5 is the most probable; every other position (the end too) is a miss
    assert e["topg"].tolist() == [3.0, 1.0, 3.0, 3.0]
    assert energies(m, vocab, sessions, window=4, kinds=("topg",), g=2)["topg"].tolist() == [2.0, 1.0, 3.0, 2.0]
    # without the end of session: one position fewer
    m2 = fixed_model(3, [0.5, 0.25, 0.25], eos=False)
    assert_close(energies(m2, vocab, [(5, 6)], window=4, kinds=("sum",))["sum"], np.array([ln2 + 2 * ln2]))


def test_topg_rule_against_a_brute_force_count():
    torch.manual_seed(0)
    vocab = Vocab(range(1, 8))
    m = NextKeyLSTM(vocab.n, hidden=6, layers=2, eos=True)
    gen = torch.Generator().manual_seed(1)
    sessions = [
        tuple(torch.randint(1, 9, (int(n),), generator=gen).tolist())  # key 8 is unseen
        for n in torch.randint(0, 14, (40,), generator=gen)
    ]
    for g in (1, 3, 7):
        got = energies(m, vocab, sessions, window=4, kinds=("topg",), g=g)["topg"]
        want = []
        for s in sessions:
            h, t, _ = windows([s], vocab, 4, True)
            with torch.no_grad():
                logits = m(h)
            misses = 0
            for row, target in zip(logits, t.tolist()):
                top = sorted(range(len(row)), key=lambda j: -float(row[j]))[:g]  # DeepLog: the g most probable
                misses += target not in top
            want.append(misses)
        assert got.tolist() == want


def test_unseen_keys_are_maximally_surprising_never_a_crash(tmp_path):
    vocab = Vocab([1, 2, 3])
    torch.manual_seed(0)
    m = NextKeyLSTM(3, hidden=4, layers=1)
    e = energies(m, vocab, [(1, 2, 3), (1, 99, 3), (12345678901234,), ()], window=3, kinds=("max", "mean", "topg"))
    assert e["max"][0] < MAX_SURPRISE and e["max"][1] == MAX_SURPRISE and e["max"][2] == MAX_SURPRISE
    assert e["topg"][1] >= 1 and np.isfinite(e["mean"]).all()
    assert e["max"][3] < MAX_SURPRISE  # an empty session: only its end is predicted
    # through a trained run and the CLI: scores are finite and the unseen session is flagged
    data = write_lines(tmp_path / "train", NORMAL)
    train_seq(tiny(data=str(data), epochs=3), tmp_path / "r", progress=False)
    write_lines(tmp_path / "new", [(1, 2, 3, 4, 5), (1, 2, 77, 4, 5)])
    assert main(["seq", "score", str(tmp_path / "r"), str(tmp_path / "new"), "-o", str(tmp_path / "s.csv")]) == 0
    rows = (tmp_path / "s.csv").read_text().splitlines()
    assert rows[0] == "index,energy,score,anomaly" and len(rows) == 3
    assert rows[2].split(",") == ["1", "100", "1", "1"]


# -------------------------------------------------------------------------------------------------- the hinge


@pytest.mark.parametrize("margin", [1.0, 5.0])
def test_hinge_value_and_gradient(margin):
    """One session ``(7,)`` without end: E = max surprise = -log p(7) = ln 8 = 2.079. The hinge is
    max(0, m - E); below the margin its gradient on the last layer's bias is -(softmax - onehot(7))."""
    vocab = Vocab([5, 6, 7])
    probs = torch.tensor([0.5, 0.25, 0.125, 0.125])
    m = fixed_model(3, probs.tolist(), eos=True)
    h, t, s = windows([(7,)], vocab, 4, eos=False)
    hinge, e = anomaly_hinge(m, h, t, s, 1, "max", margin)
    assert_close(e, torch.tensor([math.log(8)]))
    assert_close(hinge, torch.tensor(max(0.0, margin - math.log(8))))
    hinge.backward()
    expected = -(probs - torch.tensor([0.0, 0.0, 1.0, 0.0])) if margin > math.log(8) else torch.zeros(4)
    assert_close(m.fc.bias.grad, expected)


def test_default_margin_follows_the_energy_scale(tmp_path):
    """Without a fixed margin, known anomalies are pushed to ``margin_scale`` x the threshold the held-out normal
    sessions give at that epoch's start, for the energy in use, or the previous epoch's margin if that is smaller
    (never raised): each epoch's margin equals the value recomputed by hand from the checkpoint at its start, it
    differs between energies as their thresholds do, and an update's default margin is ``margin_scale`` x the run's
    calibrated threshold."""
    from ebgan.checkpoint import load_weights
    from ebgan.seq.run import build_model, threshold_of

    data = write_lines(tmp_path / "train", NORMAL)
    anom = write_lines(tmp_path / "anom", ANOMALOUS)
    margins, went_down = {}, []
    for kind in ("mean", "max"):
        cfg = tiny(data=str(data), anomalies=str(anom), epochs=4, energy=kind, margin=None, margin_scale=3.0)
        run = tmp_path / kind
        starts = {}  # the weights at the start of epochs 1-3 (3 steps an epoch), by resuming one epoch at a time
        for epochs in (1, 2, 3, 4):
            res = train_seq(replace(cfg, epochs=epochs), run, resume=epochs > 1, progress=False)
            m = load_run(run)
            if epochs < 4:
                starts[epochs] = build_model(m.cfg, m.vocab.n)
                load_weights(run / "checkpoints" / f"step-{3 * epochs:08d}", {"M": starts[epochs]})
        rows = [json.loads(r) for r in (run / "metrics.jsonl").read_text().splitlines()]
        assert len(rows) == 4  # one row an epoch, each with that epoch's margin
        want, fresh = rows[0]["margin"], []
        for epoch in (1, 2, 3):  # from the weights at the epoch's start, never raised
            e = energies(starts[epoch], m.vocab, m.holdout_sessions(), 3, (kind,))[kind]
            fresh.append(3.0 * threshold_of(e, cfg.fpr))
            want = min(want, fresh[-1])
            assert rows[epoch]["margin"] == pytest.approx(want, rel=1e-5)
        assert res["margin"] == pytest.approx(want, rel=1e-6)
        kept = [r["margin"] for r in rows[1:]]
        assert any(f > k for f, k in zip(fresh, kept))  # the threshold rose and the margin did not follow it up
        went_down.append(kept[-1] < rows[0]["margin"])  # it follows the threshold down
        margins[kind] = want
        rec = update_run(run, [], [(1, 2, 5)], UpdateSettings(steps=1), progress=False)
        assert rec["margin"] == pytest.approx(3.0 * m.threshold(kind)) and rec["margin_rule"].startswith("3 x")
    assert any(went_down)
    assert margins["mean"] < margins["max"]  # each on its own energy's scale (a mean is at most the max)
    fixed = train_seq(tiny(data=str(data), anomalies=str(anom), epochs=1, margin=6.0), tmp_path / "f", progress=False)
    assert fixed["margin"] == 6.0
    with pytest.raises(EbganError, match="margin_scale must be > 0"):
        train_seq(tiny(data=str(data), margin=None, margin_scale=0.0), tmp_path / "bad", progress=False)


def test_cli_margin_scale_and_threshold_scale_flags(tmp_path, capsys):
    """``seq train --threshold-scale 1.5 --margin-scale 3`` reach the run's settings: the threshold is 1.5 x the
    held-out energy at --fpr, the last epoch's margin 3 x the threshold (scale 1.5 included) recomputed at that
    epoch's start; ``seq update --margin-scale 2.5`` pushes false negatives to 2.5 x the run's threshold, and
    without the flag to the run's own 3 x; the default update is the validation choice (Adam, held-out guard),
    ``--no-holdout-guard``, ``--optimizer``, ``--floor-scale``, ``--keep`` and ``--keep-batch`` reach it;
    ``--resume`` refuses the flags."""
    from ebgan.checkpoint import load_weights
    from ebgan.seq.run import build_model, threshold_of

    data = write_lines(tmp_path / "train", NORMAL)
    anom = write_lines(tmp_path / "anom", ANOMALOUS)
    run = tmp_path / "r"
    argv = ["seq", "train", "--data", str(data), "--anomalies", str(anom), "--out", str(run), "--no-progress"]
    tiny_flags = ["--window", "3", "--hidden", "8", "--layers", "1", "--epochs", "4", "--batch", "8", "--lr", "0.02"]
    tiny_flags += ["--holdout", "0.2", "--fpr", "0.05", "--threads", "1", "--energy", "mean"]
    assert main([*argv, *tiny_flags, "--threshold-scale", "1.5", "--margin-scale", "3"]) == 0
    cfg = json.loads((run / "config.json").read_text())
    assert (cfg["threshold_scale"], cfg["margin_scale"], cfg["margin"]) == (1.5, 3.0, None)
    m = load_run(run)
    held = m.holdout_energies("mean")
    assert m.threshold("mean") == pytest.approx(threshold_of(held, 0.05, 1.5), rel=1e-12)
    assert m.threshold("mean") == pytest.approx(1.5 * threshold_of(held, 0.05), rel=1e-12)
    prev = build_model(m.cfg, m.vocab.n)  # the weights at the start of the last epoch (3 steps an epoch)
    load_weights(run / "checkpoints" / f"step-{3 * 3:08d}", {"M": prev})
    e = energies(prev, m.vocab, m.holdout_sessions(), 3, ("mean",))["mean"]
    res = json.loads((run / "result.json").read_text())
    rows = [json.loads(r) for r in (run / "metrics.jsonl").read_text().splitlines()]
    want = min(rows[-2]["margin"], 3.0 * threshold_of(e, 0.05, 1.5))  # (never raised)
    assert res["margin"] == pytest.approx(want, rel=1e-5) and rows[-1]["margin"] == pytest.approx(want, rel=1e-5)
    fn = write_lines(tmp_path / "fn", [(1, 2, 5)])
    capsys.readouterr()
    upd = ["seq", "update", str(run), "--false-negatives", str(fn), "--steps", "1", "--no-progress"]
    assert main([*upd, "--margin-scale", "2.5"]) == 0
    rec = json.loads((run / "updates" / "001" / "update.json").read_text())
    assert rec["margin"] == pytest.approx(2.5 * m.threshold("mean"), rel=1e-12)
    assert rec["margin_rule"].startswith("2.5 x the run's threshold")
    assert main([*upd[:3], "--false-negatives", str(fn), "--steps", "1", "--no-progress"]) == 0
    rec2 = json.loads((run / "updates" / "002" / "update.json").read_text())
    assert rec2["margin"] == pytest.approx(3.0 * m.threshold("mean"), rel=1e-12)  # the run's own scale
    # the default update is the one chosen on HDFS validation data: Adam at lr 0.003, no floor, no KL, the guard
    assert (rec2["optimizer"], rec2["lr"], rec2["floor"], rec2["keep"]) == ("adam", 0.003, None, 0.0)
    assert rec2["holdout_guard"] is True and 0.0 <= rec2["guard_scale"] <= 1.0
    assert main([*upd, "--no-holdout-guard"]) == 0
    rec3 = json.loads((run / "updates" / "003" / "update.json").read_text())
    assert rec3["holdout_guard"] is False and "guard_scale" not in rec3
    fp = write_lines(tmp_path / "fp", [(1, 2, 3, 3, 4, 5)])
    sgd = ["--optimizer", "sgd", "--lr", "0.02", "--floor-scale", "0.8", "--keep", "0.5", "--keep-batch", "4"]
    assert main([*upd, "--false-positives", str(fp), *sgd]) == 0
    rec4 = json.loads((run / "updates" / "004" / "update.json").read_text())
    assert (rec4["optimizer"], rec4["lr"], rec4["keep"], rec4["keep_batch"]) == ("sgd", 0.02, 0.5, 4)
    assert rec4["floor"] == pytest.approx(0.8 * m.threshold("mean"), rel=1e-12)
    msg = _one_error(capsys, [*upd, "--floor-scale", "0"])
    assert "floor_scale > 0" in msg
    msg = _one_error(capsys, ["seq", "update", str(run), "--resume", "--margin-scale", "2"])
    assert "only --steps may change" in msg


# ------------------------------------------------------------------------------------------------------ update


def test_update_lowers_false_positives_raises_false_negatives_and_moves_others_little(tmp_path):
    """A rare normal pattern (key 6, twice in training) is flagged; a session cut short is missed. One update
    (10 steps) lowers the first's energy and raises the second's by more than 1 nat each, while the common
    normal sessions move less than 0.5 nats; without the guard (l2 = 0) they move more."""
    normal = [(1, 2, 3, 4, 5)] * 20 + [(1, 2, 3, 3, 4, 5)] * 8 + [(1, 2, 6, 4, 5)] * 2
    data = write_lines(tmp_path / "train", normal)
    run = tmp_path / "r"
    train_seq(tiny(data=str(data), epochs=80, holdout=0.1), run, progress=False)
    shutil.copytree(run, tmp_path / "noguard")
    m = load_run(run)
    fp, fn, others = [(1, 2, 6, 4, 5)], [(1, 2, 3, 4)], [(1, 2, 3, 4, 5), (1, 2, 3, 3, 4, 5)]
    thr = m.threshold()
    before = {k: m.energies(v) for k, v in (("fp", fp), ("fn", fn), ("others", others))}
    assert before["fp"][0] > thr and before["fn"][0] < 8.0 and (before["others"] <= thr).all()
    assert after_floor_update(tmp_path, run, fp, fn, others, thr, before)
    adam = dict(optimizer="adam", floor_scale=None, keep=0.0, holdout_guard=False)  # next-key loss on the fps
    rec = update_run(run, fp, fn, UpdateSettings(steps=10, lr=0.01, l2=1.0, margin=9.0, **adam), progress=False)
    m2 = load_run(run)
    assert m2.update == 1 and rec["status"] == "done"
    after = {k: m2.energies(v) for k, v in (("fp", fp), ("fn", fn), ("others", others))}
    assert after["fp"][0] < before["fp"][0] - 1.0
    assert after["fn"][0] > before["fn"][0] + 1.0
    moved = np.abs(after["others"] - before["others"])
    assert moved.max() < 0.5  # the stated bound
    update_run(
        tmp_path / "noguard", fp, fn, UpdateSettings(steps=10, lr=0.01, l2=0.0, margin=9.0, **adam), progress=False
    )
    unguarded = np.abs(load_run(tmp_path / "noguard").energies(others) - before["others"])
    assert unguarded.max() > moved.max()
    folder = run / "updates" / "001"
    assert read_sessions(folder / "false_positives.txt").keys == fp
    assert read_sessions(folder / "false_negatives.txt").keys == fn
    saved = json.loads((folder / "update.json").read_text())
    assert_close(np.array(saved["energy_after"]["false_positives"]), after["fp"])
    assert_close(np.array(saved["energy_before"]["false_negatives"]), before["fn"])
    assert saved["base"].startswith("checkpoints/step-") and "fpr_after" in saved["holdout"]
    assert saved["fixed"]["false_positives"] == int(after["fp"][0] <= thr)
    assert len((folder / "metrics.jsonl").read_text().splitlines()) == 10
    # a second update starts from the first one's weights
    rec2 = update_run(run, fp, [], UpdateSettings(steps=2), progress=False)
    assert rec2["update"] == 2 and rec2["base"].startswith("updates/001/checkpoints/")
    with pytest.raises(EbganError, match="nothing to feed back"):
        update_run(run, [], [], progress=False)


def after_floor_update(tmp_path, run, fp, fn, others, thr, before) -> bool:
    """The bounded SGD update (the false positive's energy lowered to 0.9 x the threshold and no further; the false
    negative's raised to the margin; the L2 and KL guards; no held-out guard) on a copy: the false positive ends
    below the threshold and not below its floor, the false negative at the margin (bounded: not beyond it), the
    others within 0.3 nats (the false positive shares its first two keys with them: lowering it must raise them);
    without the KL guard the others move more."""
    for name, keep in (("default", 1.0), ("nokl", 0.0)):
        shutil.copytree(run, tmp_path / name)
        st = UpdateSettings(steps=60, lr=0.01, optimizer="sgd", floor_scale=0.9, holdout_guard=False)
        rec = update_run(tmp_path / name, fp, fn, replace(st, margin=9.0, keep=keep), progress=False)
        assert rec["optimizer"] == "sgd" and rec["floor"] == pytest.approx(0.9 * thr)
    m, nokl = load_run(tmp_path / "default"), load_run(tmp_path / "nokl")
    e_fp = m.energies(fp)[0]
    assert rec["floor"] - 0.05 < e_fp < thr < before["fp"][0]
    assert 8.95 < m.energies(fn)[0] < 9.5  # up to the margin, and no further
    moved = np.abs(m.energies(others) - before["others"]).max()
    assert moved < 0.3 and moved < np.abs(nokl.energies(others) - before["others"]).max()
    return True


def test_holdout_guard_keeps_the_held_out_false_positives_and_scales_the_change(tmp_path):
    """An update that teaches the model a reversed session (Adam at lr 0.1, no guard against forgetting) flags
    held-out normal sessions; with ``holdout_guard`` the same update's weight change is scaled by the first of
    1, 1/2, ... that flags no more of them than before (recorded as ``guard_scale``), and the weights scored are
    exactly the base plus that share of the unguarded change."""
    data = write_lines(tmp_path / "train", NORMAL)
    run = tmp_path / "r"
    train_seq(tiny(data=str(data), epochs=30), run, progress=False)
    shutil.copytree(run, tmp_path / "guarded")
    base = load_run(run)
    thr, held = base.threshold(), base.holdout_energies()
    n_before = int((held > thr).sum())
    st = UpdateSettings(steps=20, lr=0.1, optimizer="adam", l2=0.0, keep=0.0, floor_scale=None, holdout_guard=False)
    fp = [(5, 4, 3, 2, 1)] * 3
    rec = update_run(run, fp, [], st, progress=False)
    assert int((load_run(run).holdout_energies() > thr).sum()) > n_before  # the unguarded update flags some
    assert "guard_scale" not in rec and rec["holdout_guard"] is False
    grec = update_run(tmp_path / "guarded", fp, [], replace(st, holdout_guard=True), progress=False)
    g = load_run(tmp_path / "guarded")
    assert int((g.holdout_energies() > thr).sum()) <= n_before
    assert grec["guard_scale"] in [0.0] + [2.0**-k for k in range(1, 9)]
    assert grec["holdout"]["fpr_after"] <= grec["holdout"]["fpr_before"]
    new, old = load_run(run).model.state_dict(), base.model.state_dict()
    s = grec["guard_scale"]
    for k, v in g.model.state_dict().items():
        assert_close(v, old[k] + s * (new[k] - old[k]), rtol=0, atol=1e-6)


def test_update_resumes_exactly(tmp_path):
    data = write_lines(tmp_path / "train", NORMAL)
    train_seq(tiny(data=str(data), epochs=5), tmp_path / "a", progress=False)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    st = UpdateSettings(steps=12, lr=0.01, ckpt_every=4)
    update_run(tmp_path / "a", [(1, 2, 3, 3, 3, 4, 5)], [(1, 2, 5)], st, progress=False)
    update_run(tmp_path / "b", [(1, 2, 3, 3, 3, 4, 5)], [(1, 2, 5)], st, progress=False)
    u = tmp_path / "b" / "updates" / "001"  # roll back to step 8, as if killed at step 10
    (u / "update.json").unlink()
    shutil.rmtree(u / "checkpoints" / "step-00000012")
    (u / "checkpoints" / "latest").write_text("step-00000008\n")
    with pytest.raises(EbganError, match="unfinished update"):
        update_run(tmp_path / "b", [(1, 2)], [], progress=False)
    update_run(tmp_path / "b", resume=True, progress=False)
    a = load_file(str(tmp_path / "a/updates/001/checkpoints/step-00000012/weights.safetensors"))
    b = load_file(str(u / "checkpoints/step-00000012/weights.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "a/updates/001/metrics.jsonl").read_text() == (u / "metrics.jsonl").read_text()


# ------------------------------------------------------------------------------------------------------ resume


def _cli(*args, env=None):
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = dict(os.environ, PYTHONPATH=src, OMP_NUM_THREADS="1", **(env or {}))
    return subprocess.run([sys.executable, "-m", "ebgan.cli", "seq", *args], capture_output=True, text=True, env=env)


def test_killed_then_resumed_equals_uninterrupted_bit_for_bit(tmp_path):
    """Train with the known anomalies through the CLI, SIGKILL the process while its epoch-4 checkpoint is
    being published, resume with --resume alone (the run's own settings and data), and compare with an
    uninterrupted run: the same weights bit for bit, the same metrics and threshold."""
    data = write_lines(tmp_path / "train", NORMAL)
    anom = write_lines(tmp_path / "anom", ANOMALOUS)
    cfg = tiny(data=str(data), anomalies=str(anom), epochs=6)
    full = train_seq(cfg, tmp_path / "full", progress=False)
    common = [
        "--data",
        str(data),
        "--anomalies",
        str(anom),
        "--window",
        "3",
        "--hidden",
        "8",
        "--layers",
        "1",
        "--epochs",
        "6",
        "--batch",
        "8",
        "--lr",
        "0.02",
        "--holdout",
        "0.2",
        "--fpr",
        "0.05",
        "--margin",
        "6",
        "--weighting",
        "count",
        "--energy",
        "max",
        "--threshold-scale",
        "1",
        "--threads",
        "1",
        "--no-progress",
    ]
    killed = _cli("train", *common, "--out", str(tmp_path / "part"), env={"EBGAN_FAULT": "checkpoint-pointer:4"})
    assert killed.returncode == -9
    assert (tmp_path / "part/checkpoints/latest").read_text().strip() == f"step-{3 * 3:08d}"  # 3 steps per epoch
    resumed = _cli("train", "--out", str(tmp_path / "part"), "--resume", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    final = f"step-{full['steps']:08d}"
    a = load_file(str(tmp_path / "full/checkpoints" / final / "weights.safetensors"))
    b = load_file(str(tmp_path / "part/checkpoints" / final / "weights.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    def strip(p):
        return [{k: v for k, v in json.loads(r).items() if k != "time"} for r in p.read_text().splitlines()]

    assert strip(tmp_path / "full/metrics.jsonl") == strip(tmp_path / "part/metrics.jsonl")
    assert json.loads((tmp_path / "part/threshold.json").read_text()) == json.loads(
        (tmp_path / "full/threshold.json").read_text()
    )
    # resuming may lengthen the run, nothing else (in-process: the same command line)
    assert main(["seq", "train", "--out", str(tmp_path / "part"), "--resume", "--epochs", "7", "--no-progress"]) == 0
    assert json.loads((tmp_path / "part/result.json").read_text())["epochs"] == 7


def test_resume_refuses_other_settings(tmp_path, capsys):
    data = write_lines(tmp_path / "train", NORMAL)
    train_seq(tiny(data=str(data), epochs=1), tmp_path / "r", progress=False)
    msg = _one_error(
        capsys,
        ["seq", "train", "--out", str(tmp_path / "r"), "--resume", "--epochs", "3", "--lr", "0.1", "--window", "4"],
    )
    assert "refusing to resume" in msg and "lr: 0.02 -> 0.1" in msg and "window: 3 -> 4" in msg
    assert "epochs:" not in msg
    assert "already holds a run" in _one_error(
        capsys, ["seq", "train", "--data", str(data), "--out", str(tmp_path / "r")]
    )
    other = write_lines(tmp_path / "train", NORMAL[:-1])  # the data file changed under the run
    assert "changed since the run started" in _one_error(
        capsys, ["seq", "train", "--out", str(tmp_path / "r"), "--resume", "--epochs", "2"]
    )
    assert other.is_file()


def test_interrupt_checkpoints_and_says_how_to_continue(tmp_path, monkeypatch):
    import signal

    from ebgan.seq import run as seq_run
    from ebgan.stopping import Interrupted

    data = write_lines(tmp_path / "train", NORMAL)
    original = seq_run.SeqTrainer.train_step

    def step_then_sigint(self):
        out = original(self)
        if self.step == 5:
            os.kill(os.getpid(), signal.SIGINT)
        return out

    monkeypatch.setattr(seq_run.SeqTrainer, "train_step", step_then_sigint)
    with pytest.raises(Interrupted, match=r"at step 5.*continue with: ebgan seq train --out .* --resume"):
        train_seq(tiny(data=str(data), epochs=4), tmp_path / "r", progress=False)
    assert (tmp_path / "r/checkpoints/latest").read_text().strip() == "step-00000005"
    monkeypatch.setattr(seq_run.SeqTrainer, "train_step", original)
    res = train_seq(tiny(data=str(data), epochs=4), tmp_path / "r", progress=False, resume=True)
    full = train_seq(tiny(data=str(data), epochs=4), tmp_path / "f", progress=False)
    assert res["threshold"] == full["threshold"]


# -------------------------------------------------------------------------------------------------- bad input


def _one_error(capsys, argv) -> str:
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("ebgan: error: "), err
    return err[0]


def test_bad_input_is_one_error_line(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.write_text("\n\n")
    msg = _one_error(capsys, ["seq", "train", "--data", str(empty), "--out", str(tmp_path / "r1")])
    assert "holds no sessions" in msg and not (tmp_path / "r1").exists()
    bad = tmp_path / "bad"
    bad.write_text("1 2 3\n1 x 3\n")
    assert "line 2: 'x' is not a log key" in _one_error(
        capsys, ["seq", "train", "--data", str(bad), "--out", str(tmp_path / "r2")]
    )
    csvf = tmp_path / "s.csv"
    csvf.write_text("id,keys\na,1 2 3\n")
    assert "has no column 'session' (its columns: id, keys)" in _one_error(
        capsys, ["seq", "train", "--data", str(csvf), "--out", str(tmp_path / "r3")]
    )
    assert "has no column 'label'" in _one_error(
        capsys,
        [
            "seq",
            "train",
            "--data",
            str(csvf),
            "--column",
            "keys",
            "--label-column",
            "label",
            "--out",
            str(tmp_path / "r4"),
        ],
    )
    assert "unknown energy 'median'" in _one_error(
        capsys, ["seq", "train", "--data", str(bad), "--energy", "median", "--out", str(tmp_path / "r5")]
    )
    assert "is not a run folder" in _one_error(
        capsys, ["seq", "score", str(tmp_path), str(bad), "-o", str(tmp_path / "o.csv")]
    )
    log = tmp_path / "x.log"
    log.write_text("081109 203615 INFO open file a\n081109 203616 INFO close file a\n")
    pytest.importorskip("drain3")
    msg = _one_error(capsys, ["seq", "parse", str(log), "--session", r"blk_-?\d+", "-o", str(tmp_path / "p.csv")])
    assert "captures nothing in the 2 lines" in msg


def test_csv_sessions_with_labels(tmp_path):
    f = tmp_path / "s.csv"
    f.write_text("id,session,label\na,1 2 3,0\nb,4 5,1\nc,,0\n")
    s = read_sessions(f, label_column="label")
    assert s.keys == [(1, 2, 3), (4, 5), ()] and s.labels == [0, 1, 0] and s.ids == ["a", "b", "c"]
    f.write_text("id,session,label\na,1 2 3,2\n")
    with pytest.raises(EbganError, match="label '2'.*is not 0 or 1"):
        read_sessions(f, label_column="label")


def test_parse_keys_refuses_a_key_too_long_for_int_in_one_line(tmp_path, capsys):
    """A key of over 4,300 digits made int() raise ValueError (Python's limit on integer strings): now it is one
    EbganError line naming the file and line, as is any key beyond int64, in session files and CSV files."""
    f = tmp_path / "sessions.txt"
    f.write_bytes(b"1 2 3\n1 2 " + b"9" * 5000 + b"\n")
    with pytest.raises(EbganError) as e:
        read_sessions(f)
    msg = str(e.value)
    assert "\n" not in msg and len(msg) < 300, msg
    assert msg.startswith(f"{f}, line 2: log key 99999") and "(5,000 digits) is too large" in msg
    f.write_text("1 " + "0" * 5000 + "7 00 9223372036854775807\n")  # leading zeros count against int()'s limit
    assert read_sessions(f).keys == [(1, 7, 0, 2**63 - 1)]
    f.write_text("9223372036854775808\n")
    with pytest.raises(EbganError, match=r"line 1: log key 9223372036854775808 is too large"):
        read_sessions(f)
    c = tmp_path / "s.csv"
    c.write_text("session,label\n1 2,0\n3 " + "8" * 4301 + ",1\n")
    with pytest.raises(EbganError, match=r"s\.csv, line 3, column 'session': log key 8+\.\.\.8+ \(4,301 digits\)"):
        read_sessions(c, label_column="label")
    f.write_bytes(b"1 2 " + b"9" * 5000 + b"\n")
    msg = _one_error(capsys, ["seq", "train", "--data", str(f), "--out", str(tmp_path / "run")])
    assert "line 1: log key" in msg and "too large" in msg and not (tmp_path / "run").exists()


# -------------------------------------------------------------------------------------------------- raw logs


def test_parse_a_raw_log_into_sessions(tmp_path, capsys):
    pytest.importorskip("drain3")
    lines = []
    for i, blk in enumerate(["blk_1", "blk_-2", "blk_3"]):
        lines += [
            f"0811 20{i}0 INFO dfs.DataNode: Receiving block {blk} src: /10.0.0.{i}:50010",
            f"0811 20{i}1 INFO dfs.FSNamesystem: allocateBlock: /user/job{i}/part-{i} {blk}",
            f"0811 20{i}2 INFO dfs.DataNode: PacketResponder {i} for block {blk} terminating",
        ]
    lines.insert(4, "0811 2999 WARN dfs.DataNode: no block on this line")
    lines.append("0811 2030 INFO dfs.DataNode: Receiving block blk_3 src: /10.0.0.9:50010")
    log = tmp_path / "hdfs.log"
    log.write_text("\n".join(lines) + "\n")
    out = tmp_path / "sessions.csv"
    assert (
        main(
            [
                "seq",
                "parse",
                str(log),
                "--session",
                r"(blk_-?\d+)",
                "--content",
                r"INFO (?P<content>.*)$",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    assert "3 sessions over 3 keys" in capsys.readouterr().out
    s = read_sessions(out)
    assert s.ids == ["blk_1", "blk_-2", "blk_3"]
    assert s.keys[0] == s.keys[1] and s.keys[2] == s.keys[0] + (s.keys[0][0],) and len(set(s.keys[0])) == 3
    templates = (tmp_path / "sessions.templates.csv").read_text().splitlines()
    assert templates[0] == "key,count,template" and len(templates) == 4
    assert any("Receiving block <*>" in t for t in templates)


# ---------------------------------------------------------------------------------------------------- detector


def test_sequence_detector_fit_predict_and_from_run(tmp_path):
    X = NORMAL + ANOMALOUS
    y = [0] * len(NORMAL) + [1] * len(ANOMALOUS)
    det = SequenceDetector(
        run_dir=tmp_path / "r", **{k: v for k, v in vars(tiny()).items() if k not in ("data", "anomalies")}
    ).fit(X, y)
    assert det.threshold_ is not None and det.decision_scores_.shape == (len(NORMAL),)
    scores = det.decision_function([(1, 2, 3, 4, 5), (1, 2, 5), (1, 9, 3)])
    assert scores[0] < det.threshold_ < min(scores[1], scores[2])
    # the known anomalies were pushed up to the margin (6) on their novel positions only: the normal session
    # stays low (a hinge on the whole session's largest surprise had raised it to 6.3 through its first key)
    assert scores[0] < 2.0 and (det.decision_function(ANOMALOUS) > 5.5).all()
    assert det.predict([(1, 2, 3, 4, 5), (1, 2, 5)]).tolist() == [0, 1]
    again = SequenceDetector.from_run(tmp_path / "r")
    assert_close(again.decision_function(X), det.decision_function(X))
    assert again.threshold_ == det.threshold_
    topg = SequenceDetector.from_run(tmp_path / "r", threshold=0.5)
    assert topg.threshold_ == 0.5
    with pytest.raises(EbganError, match="not fitted"):
        SequenceDetector().predict([(1,)])


def test_defaults_are_the_settings_chosen_on_hdfs_validation_data():
    """The package's defaults are the HDFS benchmark's validation choices, read from its result files: the grid's
    weighting, end-of-session prediction and energy, the search's model (window, epochs) and threshold rule,
    and the unlearning margin's scale. A re-run that chooses otherwise fails here until the defaults follow."""
    res = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "seq-hdfs"
    grid = json.loads((res / "validation.json").read_text())["chosen"]
    search = json.loads((res / "search.json").read_text())
    model = search["configs"][search["chosen"]]
    uval = json.loads((res / "unlearning-val.json").read_text())
    d = SeqConfig()
    assert (d.weighting, d.eos, d.energy) == (grid["weighting"], grid["eos"], grid["energy"])
    assert search["energy"] == d.energy
    assert (d.window, d.hidden) == (model["settings"].get("window", 10), model["settings"].get("hidden", 64))
    assert d.epochs == model["settings"].get("epochs", search["epochs"])
    assert [d.fpr, d.threshold_scale] == search["rule"]
    assert d.margin is None and d.margin_scale == uval["chosen_scale"]
