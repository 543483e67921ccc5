"""One place that makes torch deterministic.

Called at the start of every stage (and by tests). Randomness itself never comes
from global RNG state: every function that samples takes a seed or a
``torch.Generator`` built from a params seed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

import torch

from husai.errors import ParamError

CUBLAS_WORKSPACE_CONFIG = ":4096:8"


def configure(device: str = "cpu", threads: int = 2) -> torch.device:
    """Pin the thread count, switch on deterministic algorithms and pick the device.

    On CUDA this also requires ``CUBLAS_WORKSPACE_CONFIG`` (set here if absent,
    which works as long as CUDA has not been initialised yet) and turns TF32 off,
    so matmuls are full fp32 as on the CPU.
    """
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE_CONFIG)
    _keep_freed_memory()
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    if device == "cuda":
        if not torch.cuda.is_available():
            raise ParamError(
                "runtime.device", device, "no CUDA device is available on this machine"
            )
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    elif device != "cpu":
        raise ParamError("runtime.device", device, "must be cpu or cuda")
    return torch.device(device)


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def _keep_freed_memory() -> None:
    """Stop glibc from returning each freed tensor buffer to the OS.

    By default buffers over 128 KiB are mmap'ed and unmapped on free, so every
    training step page-faults its activations in again (the cost is measured in
    benchmarks/RESULTS-defaults.md). Raising the mmap and trim thresholds keeps them
    in the heap. Affects speed, not results.
    """
    name = ctypes.util.find_library("c")
    if name is None or "libc" not in name:
        return
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt(_M_MMAP_THRESHOLD, 32 * 1024 * 1024)
        libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30)
    except (OSError, AttributeError):  # not glibc: nothing to tune
        return


def generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A fresh generator seeded from params; sampling on the CPU keeps streams device-independent."""
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    return gen
