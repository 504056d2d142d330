"""TF32 for textclf's own runs only, through torch's current fp32_precision API."""

import torch

from textclf.training.device import tf32


def precisions():
    return torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision


def test_tf32_is_on_during_a_cuda_run_and_restored_after():
    """Settable without a GPU: the flags are process state, read by cuBLAS/cuDNN when a kernel
    runs."""
    before = precisions()
    with tf32(torch.device("cuda", 0)):
        assert precisions() == ("tf32", "tf32")
    # the next thing in the process (Trainer in bench/) gets torch's default
    assert precisions() == before
    try:
        with tf32(torch.device("cuda")):
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    assert precisions() == before


def test_tf32_leaves_cpu_runs_alone():
    before = precisions()
    with tf32(torch.device("cpu")):
        assert precisions() == before
