"""Device choice shared by training, evaluation and ingestion."""

from __future__ import annotations

import torch
from threadpoolctl import threadpool_limits

from core.errors import ConfigError


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present; asking for CUDA without one is an error, not a fallback.

    Raises:
        ConfigError: for an unknown name or ``cuda`` on a machine without a GPU.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(
            "--device cuda was asked for but no CUDA GPU is available; use auto or cpu"
        )
    if name != "cpu" and not name.startswith("cuda"):
        raise ConfigError(f"unknown device {name!r}; use auto, cpu or cuda")
    return torch.device(name)


def autocast(device: torch.device) -> torch.autocast:
    """Mixed precision on CUDA (bfloat16), a no-op context on CPU."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def limit_blas_threads() -> None:
    """Give numpy's BLAS one thread in a process that serves queries.

    Query-time numpy work is small, and OpenBLAS threads left spinning after each call take
    the cores torch's text encoder needs: on the 2-core VM, MiniLM's p95 encode time was
    94 ms with two BLAS threads and 9 ms with one (docs/BENCHMARKS.md).
    """
    threadpool_limits(1, user_api="blas")
