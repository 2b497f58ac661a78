"""Two-process data parallelism with gloo on CPU: every rank ends with identical parameters."""

from __future__ import annotations

import os
import socket
import types

import torch
import torch.multiprocessing as mp

from ebgan import dist
from ebgan.config import apply_overrides, from_preset, resolve
from ebgan.data import Dataset, sample_mixture
from ebgan.train import Trainer


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out: str, losses: list[str]) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    info = dist.setup("cpu")
    x, y = sample_mixture("ring", 2048, torch.Generator().manual_seed(0))
    for loss in losses:
        cfg = resolve(apply_overrides(from_preset("ring"), {"loss": loss, "g_size": 16, "d_size": 16,
                                                            "batch_size": 16, "d_dropout": 0.1}))
        t = Trainer(cfg, Dataset("ring", "points", x, y), info)
        first = t.next_batch()
        t.pos = 0
        for _ in range(6):
            t.train_step()
        flat = torch.cat([p.detach().flatten() for p in list(t.G.parameters()) + list(t.D.parameters())])
        torch.save({"params": flat, "first": first}, f"{out}/{loss}-rank{rank}.pt")
    dist.cleanup()


def test_two_ranks_stay_identical(tmp_path):
    losses = ["ebgan", "wgan-gp", "began"]
    mp.start_processes(_worker, args=(2, _free_port(), str(tmp_path), losses), nprocs=2, join=True,
                       start_method="spawn")
    for loss in losses:
        r0, r1 = (torch.load(tmp_path / f"{loss}-rank{r}.pt") for r in (0, 1))
        assert torch.equal(r0["params"], r1["params"]), loss
        assert not torch.equal(r0["first"], r1["first"])  # each rank reads its own slice of the batch


def _matched_noise(self, n: int) -> torch.Tensor:
    """Noise for the global batch of this call, the same whatever the process count: this rank's slice."""
    self._noise_calls = getattr(self, "_noise_calls", 0) + 1
    world, rank = self.info.world_size, self.info.rank
    z = torch.randn(n * world, self.cfg.z_dim, generator=torch.Generator().manual_seed(1000 + self._noise_calls))
    return z[rank * n:(rank + 1) * n]


def _equal_worker(rank: int, world: int, port: int, out: str, batch: int) -> None:
    if world > 1:
        os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                          MASTER_PORT=str(port))
    torch.set_num_threads(1)
    info = dist.setup("cpu") if world > 1 else dist.DistInfo()
    x, y = sample_mixture("ring", 2048, torch.Generator().manual_seed(0))
    # No batch norm, no dropout, no pulling-away term: nothing couples the samples of a batch, so the gradient
    # of the global batch is the mean of the ranks' gradients.
    cfg = resolve(apply_overrides(from_preset("ring"), {"g_size": 16, "d_size": 16, "batch_size": batch,
                                                        "pt_weight": 0.0, "lr_schedule": "constant"}))
    t = Trainer(cfg, Dataset("ring", "points", x, y), info)
    t.noise = types.MethodType(_matched_noise, t)  # this trainer only
    for _ in range(8):
        t.train_step()
    flat = torch.cat([p.detach().flatten() for p in list(t.G.parameters()) + list(t.D.parameters())])
    torch.save(flat, f"{out}/world{world}-rank{rank}.pt")
    if world > 1:
        dist.cleanup()


def test_two_ranks_equal_one_process_at_the_same_global_batch(tmp_path):
    mp.start_processes(_equal_worker, args=(2, _free_port(), str(tmp_path), 8), nprocs=2, join=True,
                       start_method="spawn")
    _equal_worker(0, 1, 0, str(tmp_path), 16)
    one = torch.load(tmp_path / "world1-rank0.pt")
    two = torch.load(tmp_path / "world2-rank0.pt")
    assert torch.equal(two, torch.load(tmp_path / "world2-rank1.pt"))
    torch.testing.assert_close(two, one, rtol=1e-4, atol=1e-5)  # float sums in another order, nothing more


def test_single_process_info():
    info = dist.setup("cpu") if "WORLD_SIZE" not in os.environ else dist.DistInfo()
    assert (info.rank, info.world_size, info.is_main, info.enabled) == (0, 1, True, False)


def _train_worker(rank: int, world: int, port: int, out: str) -> None:
    import json as _json

    from ebgan.train import Interrupted, train

    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    cfg = resolve(apply_overrides(from_preset("ring"), {"g_size": 16, "d_size": 16, "steps": 100000,
                                                        "log_every": 10, "num_threads": 1}))
    try:
        train(cfg, f"{out}/run", progress=False)
        stopped = None
    except Interrupted as e:
        stopped = str(e)
    with open(f"{out}/rank{rank}.json", "w") as f:
        _json.dump({"stopped": stopped}, f)


def test_a_signal_to_one_rank_stops_every_rank_at_the_same_checkpointed_step(tmp_path):
    import json
    import signal
    import time

    ctx = mp.start_processes(_train_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=False,
                             start_method="spawn")
    deadline = time.monotonic() + 120
    metrics = tmp_path / "run" / "metrics.jsonl"
    while not (metrics.exists() and metrics.read_text().count("\n") >= 2):  # both ranks inside the loop
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.kill(ctx.processes[1].pid, signal.SIGTERM)  # torchrun forwards signals to all; the worst case is one
    while not ctx.join(timeout=60):
        pass
    msgs = [json.loads((tmp_path / f"rank{r}.json").read_text())["stopped"] for r in (0, 1)]
    steps = [int(m.split(" at step ")[1].split(";")[0]) for m in msgs]
    assert all(m.startswith("stopped by SIGTERM at step ") for m in msgs) and steps[0] == steps[1]
    step = steps[0]
    assert (tmp_path / "run" / "checkpoints" / "latest").read_text().strip() == f"step-{step:08d}"


def test_sync_batch_norm_swaps_layers_and_keeps_the_state():
    cfg = resolve(apply_overrides(from_preset("mnist-conv"), {"g_channels": 4, "d_channels": 4}))
    from ebgan.nets import build_networks

    G, _ = build_networks(cfg, (1, 28, 28), "ae")
    before = {k: v.clone() for k, v in G.state_dict().items()}
    n_bn = sum(isinstance(m, torch.nn.BatchNorm2d) for m in G.modules())
    S = dist.sync_batch_norm(G)
    assert n_bn > 0 and sum(isinstance(m, torch.nn.SyncBatchNorm) for m in S.modules()) == n_bn
    after = S.state_dict()
    assert after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in before)


def test_sync_bn_on_cpu_processes_is_refused_with_one_clear_error():
    import pytest

    from ebgan.errors import EbganError

    x, y = sample_mixture("ring", 256, torch.Generator().manual_seed(0))
    cfg = resolve(apply_overrides(from_preset("ring"), {"sync_bn": True, "device": "cpu"}))
    with pytest.raises(EbganError, match="sync_bn=true needs CUDA devices"):
        Trainer(cfg, Dataset("ring", "points", x, y), dist.DistInfo(rank=0, world_size=2, local_rank=0))
    Trainer(cfg, Dataset("ring", "points", x, y))  # one process: nothing to synchronise, no error
