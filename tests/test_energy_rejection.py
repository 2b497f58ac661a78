"""Rejection by the learned energy (``energy_keep``): the kept samples are exactly the lowest-energy ones of the
candidates, classes keep their shares, and what cannot be filtered is refused."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from test_train import ring, tiny_cfg

from ebgan.cli import main
from ebgan.errors import EbganError
from ebgan.nets import set_labels
from ebgan.sampling import load_networks, sample_from_run
from ebgan.train import train


def candidates(run, m, seed=0, batch_size=1000, labels=None):
    """What sample_from_run draws before filtering, and D's energy of each, computed here independently."""
    G, D, cfg, _, _ = load_networks(run)
    gen = torch.Generator().manual_seed(seed)
    xs, es = [], []
    with torch.no_grad():
        for i in range(0, m, batch_size):
            z = torch.randn(min(batch_size, m - i), cfg.z_dim, generator=gen)
            if labels is not None:
                set_labels(G, labels[i : i + len(z)])
                set_labels(D, labels[i : i + len(z)])
            x = G(z)
            xs.append(x)
            es.append(D(x)[0])
    return torch.cat(xs), torch.cat(es)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("rej") / "run"
    train(tiny_cfg(steps=20), out, dataset=ring(), progress=False)
    return out


def test_keeps_the_lowest_energies_in_drawing_order(run):
    n, keep = 50, 0.4
    m = math.ceil(n / keep)
    assert m == 125
    x, e = candidates(run, m, batch_size=40)
    order = torch.argsort(e)
    kept = sorted(order[:n].tolist())
    got = sample_from_run(run, n, batch_size=40, energy_keep=keep)
    assert got.shape == (n, 2)
    np.testing.assert_array_equal(got, x[kept].numpy())
    # Every kept energy is below every rejected one.
    assert e[kept].max() < e[order[n:]].min()
    # The first candidates are what an unfiltered draw of m gives: the same seed, the same stream.
    np.testing.assert_array_equal(sample_from_run(run, m, batch_size=40), x.numpy())


def test_keep_one_is_plain_sampling_and_bounds(run):
    np.testing.assert_array_equal(sample_from_run(run, 30, energy_keep=1.0), sample_from_run(run, 30))
    assert sample_from_run(run, 10, energy_keep=0.1).shape == (10, 2)  # 100 candidates, not 101
    for bad in (0.0, -0.5, 1.5):
        with pytest.raises(EbganError, match="energy_keep must be in"):
            sample_from_run(run, 10, energy_keep=bad)


def test_conditional_runs_keep_each_class_share(tmp_path):
    train(tiny_cfg(conditional=True, steps=20), tmp_path / "c", dataset=ring(), progress=False)
    n, keep, k = 24, 0.5, 8  # ring: 8 classes, labels 0..7 in turn
    m = 48
    labels = torch.arange(m) % k
    x, e = candidates(tmp_path / "c", m, labels=labels)
    got = sample_from_run(tmp_path / "c", n, energy_keep=keep)
    expected = torch.empty(n, 2)
    for c in range(k):
        cand = (labels == c).nonzero().squeeze(1)  # 6 candidates of class c, 3 slots in the output
        best = torch.sort(cand[torch.argsort(e[cand])[:3]]).values
        expected[torch.arange(c, n, k)] = x[best]
    np.testing.assert_array_equal(got, expected.numpy())
    # One class asked for: the lowest energies among candidates all of that class.
    labels = torch.full((m,), 3)
    x, e = candidates(tmp_path / "c", m, labels=labels)
    got = sample_from_run(tmp_path / "c", n, label=3, energy_keep=keep)
    np.testing.assert_array_equal(got, x[torch.sort(torch.argsort(e)[:n]).values].numpy())


def test_refused_without_an_energy(tmp_path, capsys):
    train(tiny_cfg(steps=5, loss="nsgan"), tmp_path / "gan", dataset=ring(), progress=False)
    with pytest.raises(EbganError, match="needs an auto-encoder discriminator"):
        sample_from_run(tmp_path / "gan", 10, energy_keep=0.5)
    assert sample_from_run(tmp_path / "gan", 10).shape == (10, 2)  # plain sampling still works
    code = main(["sample", str(tmp_path / "gan"), "-n", "8", "-o", str(tmp_path / "s.npy"), "--energy-keep", "0.5"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "auto-encoder discriminator" in err[0]


def test_cli_sample_and_eval(run, tmp_path, capsys):
    assert main(["sample", str(run), "-n", "40", "-o", str(tmp_path / "s.npy"), "--energy-keep", "0.5"]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "s.npy"), sample_from_run(run, 40, energy_keep=0.5))
    capsys.readouterr()
    assert main(["eval", str(run), "-n", "200", "--energy-keep", "0.5"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    res = json.loads(out[-1])
    assert res["energy_keep"] == 0.5 and res["n"] == 200
    assert any("energy rejection" in line for line in out)
    assert main(["eval", str(run), "-n", "200"]) == 0
    assert "energy_keep" not in json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    np.save(tmp_path / "p.npy", np.zeros((10, 2), np.float32))
    code = main(["eval", str(tmp_path / "p.npy"), "--against", "ring", "--energy-keep", "0.5"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "give a RUN_DIR" in err[0]
