"""Where a run executes: resolving ``TrainConfig.device`` and moving work onto it.

The dataset stays in CPU memory; each batch is indexed there and copied to the device
(from pinned memory, without blocking, on CUDA). The model is built on the CPU after
``torch.manual_seed(seed)`` and then moved, so its initial weights are the same on every
device. Checkpoints hold CPU tensors, so a run resumes on either device.

Mixed precision (``TrainConfig.amp``) autocasts the forward pass and the loss: to
bfloat16 (float32's exponent range: no loss scaling), or to float16 with a
``GradScaler`` that multiplies the loss before ``backward`` and skips an update whose
gradients overflowed (lowering the scale). Evaluation runs in float32.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from signalprop.train.config import DEVICE_PATTERN, DEVICES


def _no_cuda_reason() -> str:
    if torch.version.cuda is None:
        return f"torch {torch.__version__} was built without CUDA"
    return "torch.cuda.is_available() is False: no GPU or driver found"


def resolve_device(device: str = "cpu", *, local_rank: int | None = None) -> torch.device:
    """The ``torch.device`` a config's ``device`` means on this machine.

    ``"auto"`` is ``cuda`` where a GPU is available, else ``cpu``; ``"cuda"`` is GPU 0.
    Under torchrun (``local_rank`` given) ``cuda`` and ``auto`` mean the GPU of this
    process's LOCAL_RANK, and a fixed ``cuda:N`` is refused (every process would share it).

    Raises:
        ValueError: an unknown name, or a GPU this machine does not have (naming the
            option, why, and what is available).

    Examples:
        >>> resolve_device("cpu")
        device(type='cpu')
        >>> resolve_device("auto") == (torch.device("cuda", 0) if torch.cuda.is_available()
        ...                            else torch.device("cpu"))
        True
    """
    if not isinstance(device, str) or not DEVICE_PATTERN.fullmatch(device):
        raise ValueError(f"device={device!r} is not allowed; valid: {DEVICES}")
    if device == "cpu" or (device == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ValueError(f"device={device!r} needs a CUDA GPU, but {_no_cuda_reason()}; "
                         "available: cpu (set device 'cpu', or 'auto' to use a GPU only "
                         "where there is one)")
    count = torch.cuda.device_count()
    names = ", ".join(f"cuda:{i}" for i in range(count))
    if local_rank is not None:
        if device.startswith("cuda:"):
            raise ValueError(f"device={device!r}: under torchrun (--ddp) each process takes "
                             "the GPU of its LOCAL_RANK; set device 'cuda' or 'auto'")
        index = local_rank
        if index >= count:
            raise ValueError(f"device={device!r}: this process has LOCAL_RANK {index} but the "
                             f"machine has {count} GPU(s) ({names}); start at most {count} "
                             "processes per machine")
    else:
        index = int(device[5:]) if device.startswith("cuda:") else 0
        if index >= count:
            raise ValueError(f"device={device!r}: this machine has {count} GPU(s); "
                             f"available: cpu, cuda, {names}")
    return torch.device("cuda", index)


def backend_for(device: torch.device) -> str:
    """The ``torch.distributed`` backend for ``device``: nccl on CUDA, gloo on the CPU.

    Examples:
        >>> backend_for(torch.device("cpu")), backend_for(torch.device("cuda", 0))
        ('gloo', 'nccl')
    """
    return "nccl" if device.type == "cuda" else "gloo"


def cpu_state(obj: Any) -> Any:
    """``obj`` (a state dict: nested dicts, lists, tuples) with every tensor on the CPU.

    Examples:
        >>> cpu_state({"w": torch.ones(2), "rest": [1, "a"]})
        {'w': tensor([1., 1.]), 'rest': [1, 'a']}
    """
    if isinstance(obj, torch.Tensor):
        return obj.cpu()
    if isinstance(obj, dict):
        return {k: cpu_state(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(cpu_state(v) for v in obj)
    return obj


@dataclass(frozen=True)
class Placement:
    """A run's device and mixed precision: moves the model and batches, autocasts.

    Args:
        device: where the model, batches, loss and metrics live.
        amp: None, "bfloat16" or "float16" (see the module docstring).

    Examples:
        >>> p = Placement(torch.device("meta"), amp="bfloat16")  # 'meta': shapes, no data
        >>> x, y = p.batch(torch.zeros(4, 3), torch.zeros(4, dtype=torch.long))
        >>> x.device, p.model(nn.Linear(3, 2)).weight.device, p.scaler() is None
        (device(type='meta'), device(type='meta'), True)
    """

    device: torch.device
    amp: str | None = None

    def model(self, model: nn.Module) -> nn.Module:
        """``model`` moved to the device (in place, as ``Module.to`` does)."""
        return model.to(self.device)

    def batch(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """CPU tensors copied to the device: from pinned memory, non-blocking, on CUDA."""
        if self.device.type == "cpu":
            return tensors
        cuda = self.device.type == "cuda"
        return tuple((t.pin_memory() if cuda else t).to(self.device, non_blocking=cuda)
                     for t in tensors)

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """Autocast to ``amp``'s dtype for the forward pass and loss (nothing when off)."""
        if self.amp is None:
            yield
            return
        with torch.autocast(self.device.type, dtype=getattr(torch, self.amp)):
            yield

    def scaler(self) -> torch.amp.GradScaler | None:
        """A loss scaler for float16 (None otherwise: float32 and bfloat16 need none)."""
        if self.amp != "float16":
            return None
        return torch.amp.GradScaler(self.device.type)
