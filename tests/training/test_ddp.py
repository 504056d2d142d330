"""One model trained by several processes (train.devices, torch.distributed): two gloo ranks on
CPU against one process at the same effective batch (each rank's batch halved). After an epoch the
parameters agree within float tolerance (the gradient sums are added in another order), and given
the same weights every validation and test figure and every row's probabilities are identical: the
same rows, each once, in the same batches."""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from textclf.config import load_config
from textclf.run.prepare import prepare
from textclf.training import ddp
from textclf.training.evaluate import evaluate
from textclf.training.loop import fit


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def dropout_free_model(tiny_model, tmp_path_factory) -> Path:
    """The tiny BERT without dropout: both sides draw no random masks, so they can agree."""
    path = tmp_path_factory.mktemp("no-dropout")
    shutil.copytree(tiny_model, path, dirs_exist_ok=True)
    config = json.loads((path / "config.json").read_text())
    config |= {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
    (path / "config.json").write_text(json.dumps(config))
    return path


def one_rank(rank: int, world_size: int, port: int, overrides: list[str], out: str, weights: str):
    """A rank (or the single process): train an epoch, then score the reference weights."""
    os.environ |= {
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
        "RANK": str(rank),
        "LOCAL_RANK": str(rank),
        "WORLD_SIZE": str(world_size),
        "GLOO_SOCKET_IFNAME": "lo",
        "OMP_NUM_THREADS": "1",  # one thread on each side: the same kernels, the same sums
    }
    world = ddp.join("cpu", 120) if world_size > 1 else ddp.SOLO
    cfg = load_config(None, overrides)
    ready = prepare(cfg, None, world=world)
    loaders, device = ready.loaders, ready.device
    fitted = fit(ready.model, loaders.train, loaders.val, cfg.train, device, world=world)
    trained = {k: v.clone() for k, v in ready.model.state_dict().items()}
    if weights:
        ready.model.load_state_dict(torch.load(weights))
    scored = {
        name: evaluate(ready.model, loader, device, None, world=world)
        for name, loader in (("val", loaders.val), ("test", loaders.test))
    }
    if rank == 0:
        torch.save(
            {
                "trained": trained,
                "history": fitted.history,
                "scored": {
                    n: (e.loss, e.accuracy, e.probabilities, e.predictions)
                    for n, e in scored.items()
                },
            },
            out,
        )
    ddp.leave()


def spawn(world_size: int, overrides: list[str], out: Path, weights: Path | None = None) -> dict:
    mp.spawn(
        one_rank,
        args=(world_size, free_port(), overrides, str(out), str(weights or "")),
        nprocs=world_size,
        join=True,
    )
    return torch.load(out, weights_only=False)


@pytest.mark.parametrize(
    "grouped, accum", [(True, 1), (False, 2)], ids=["grouped", "random-accumulated"]
)
def test_two_ranks_train_and_score_as_one_process(
    dropout_free_model, tiny_data, tmp_path, grouped, accum
):
    common = [
        f"model.name={dropout_free_model}",
        f"data.name={tiny_data}",
        "data.label_names=neg,pos",
        "data.max_length=32",
        "train.epochs=1",
        "train.learning_rate=5e-3",
        "train.warmup_ratio=0",
        "train.progress=false",
        f"train.group_by_length={str(grouped).lower()}",
        f"train.grad_accum_steps={accum}",
    ]
    one = spawn(1, [*common, "train.batch_size=16"], tmp_path / "one.pt")
    torch.save(one["trained"], tmp_path / "weights.pt")
    two = spawn(2, [*common, "train.batch_size=8"], tmp_path / "two.pt", tmp_path / "weights.pt")
    # an epoch of training: the same parameters. Adam moves each parameter by about the learning
    # rate (5e-3) a step, whatever its gradient's size, so a gradient near zero summed in another
    # order shows as ~1e-6; another batch would show as ~1e-3
    for name, value in one["trained"].items():
        torch.testing.assert_close(two["trained"][name], value, rtol=1e-4, atol=2e-5)
    assert two["history"][0]["train_loss_running"] == pytest.approx(
        one["history"][0]["train_loss_running"], rel=1e-5
    )
    for split in ("val", "test"):  # the same weights: the very same figures, row by row
        loss, accuracy, probabilities, predictions = one["scored"][split]
        loss2, accuracy2, probabilities2, predictions2 = two["scored"][split]
        assert (loss2, accuracy2) == (loss, accuracy)
        assert np.array_equal(probabilities2, probabilities)
        assert np.array_equal(predictions2, predictions)
