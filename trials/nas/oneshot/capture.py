"""A static-shape search step recorded once as a CUDA graph and replayed after.

On a GPU a DARTS step is tens of thousands of small kernels, and the GPU waits on their launches
(issue 22: busy about 30% of the step). Recorded as one CUDA graph, the step replays with one
launch. What a graph needs, and where this falls back to running the step eagerly:

* a CUDA device (elsewhere: eager, with the reason in :attr:`StepCapture.reason`);
* no host synchronisation inside the step (no ``.item()``, no float16 loss scaling) and
  capturable optimizers (Adam with ``capturable=True``; SGD's ops are all on the device);
* inputs of the recorded shapes: a batch of another shape (the last, smaller one) runs eagerly;
* constants baked in at recording: the learning rates, so the graph is recorded again when the
  ``key`` (which holds them) changes, after an epoch's scheduler step;
* a few eager warm-up steps first, on a side stream, so that lazily created state (optimizer
  moments, cuDNN plans) exists before recording.

A recording that fails (an operation CUDA graphs refuse) turns capture off for good, with a
warning naming the error, and the step runs eagerly from then on.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import torch

Step = Callable[..., tuple[Any, torch.Tensor]]


class StepCapture:
    """Runs ``step(*inputs)`` through a CUDA graph where it can (see the module docstring)."""

    def __init__(self, owner: str, device: torch.device, blocker: str | None = None, warmup: int = 3) -> None:
        self.owner = owner
        self.warmup = warmup
        #: Why steps run eagerly (None while capture is on).
        self.reason: str | None = blocker
        if self.reason is None and device.type != "cuda":
            self.reason = f"device {str(device)!r} is not a CUDA device"
        if self.reason is None and not torch.cuda.is_available():
            self.reason = "CUDA is not available"
        self._warm = 0
        self._key: Hashable = None
        self._graph: torch.cuda.CUDAGraph | None = None
        self._inputs: list[torch.Tensor] = []
        self._outputs: tuple[Any, torch.Tensor] | None = None

    @property
    def active(self) -> bool:
        return self.reason is None

    def run(self, key: Hashable, step: Step, inputs: Sequence[torch.Tensor]) -> tuple[Any, torch.Tensor]:
        """The step's (output, loss); replayed when ``key`` and the input shapes match the recording."""
        if self.reason is not None:
            return step(*inputs)
        if self._graph is not None and key == self._key and self._fits(inputs):
            for static, tensor in zip(self._inputs, inputs, strict=True):
                static.copy_(tensor)
            self._graph.replay()
            assert self._outputs is not None
            return self._outputs
        if self._warm < self.warmup or (self._graph is not None and not self._fits(inputs)):
            self._warm += 1
            return self._side_stream(step, inputs)
        try:
            return self._record(key, step, inputs)
        except Exception as error:  # any refusal means: run eagerly from now on
            self.reason = f"recording the step failed: {type(error).__name__}: {error}"
            self._graph, self._outputs, self._inputs = None, None, []
            warnings.warn(
                f"{self.owner}: CUDA graph capture is off ({self.reason})", RuntimeWarning, stacklevel=3
            )
            torch.cuda.synchronize()
            return step(*inputs)

    def _fits(self, inputs: Sequence[torch.Tensor]) -> bool:
        return len(inputs) == len(self._inputs) and all(
            a.shape == b.shape and a.dtype == b.dtype and a.device == b.device
            for a, b in zip(inputs, self._inputs, strict=True)
        )

    @staticmethod
    def _side_stream(step: Step, inputs: Sequence[torch.Tensor]) -> tuple[Any, torch.Tensor]:
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            result = step(*inputs)
        torch.cuda.current_stream().wait_stream(stream)
        return result

    def _record(self, key: Hashable, step: Step, inputs: Sequence[torch.Tensor]) -> tuple[Any, torch.Tensor]:
        self._graph, self._outputs = None, None  # the old graph's memory goes back first
        static = [tensor.clone() for tensor in inputs]
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            outputs = step(*static)
        self._graph, self._key, self._inputs, self._outputs = graph, key, static, outputs
        graph.replay()  # recording ran nothing: this is the step on this batch
        return outputs
