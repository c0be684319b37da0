"""``torch.compile`` of the UNet and its channels_last layout (issue 24, ``SamplingOptions.compile``,
``SamplingOptions.channels_last``; docs/SAMPLING.md).

Both are opt-in and change no value beyond float rounding. Compiling happens in place
(``nn.Module.compile``), once per UNet: the first call of each new input shape pays the
compilation (tens of seconds to minutes, logged once), later calls run the compiled code. The
UNet keeps its class, so the rest of the pack sees the same model.

Both stay off by default: whether they help on a machine is measured with
``benchmarks/compile_benchmark.py`` (the README's "Speed presets" section gives what was measured).
"""

from __future__ import annotations

import logging
import platform
import shutil
import sys

import torch

from ..errors import MIMAFaceError

log = logging.getLogger(__name__)


def compile_unavailable(device: str | torch.device | None = None) -> str | None:
    """Why ``torch.compile`` cannot run the UNet on ``device`` here, or None when it can.

    Checks, without compiling anything: TorchDynamo's support for this Python and platform
    (``torch._dynamo.is_dynamo_supported``); on CUDA, Triton (TorchInductor's GPU backend;
    usually missing on Windows); on the CPU, a C++ compiler on PATH (TorchInductor's CPU backend
    builds C++: g++/clang++ on Linux and macOS, MSVC ``cl`` on Windows).
    """
    try:
        import torch._dynamo as dynamo
    except Exception as exc:  # noqa: BLE001 - any import failure means the same thing
        return f"TorchDynamo does not import in this torch {torch.__version__} ({type(exc).__name__}: {exc})"
    if not dynamo.is_dynamo_supported():
        return (f"torch {torch.__version__} cannot compile on Python {platform.python_version()} "
                f"({sys.platform})")
    kind = torch.device(device).type if device is not None else ("cuda" if torch.cuda.is_available() else "cpu")
    if kind == "cuda":
        from torch.utils._triton import has_triton

        if not has_triton():
            return ("Triton, which torch.compile needs on CUDA, is not installed"
                    + (" (on Windows: pip install triton-windows)" if sys.platform == "win32" else
                       " (pip install triton, the version matching your torch)"))
    elif kind == "cpu":
        names = ("cl",) if sys.platform == "win32" else ("g++", "c++", "clang++")
        if not any(shutil.which(n) for n in names):
            return f"torch.compile on the CPU needs a C++ compiler on PATH ({' or '.join(names)}), and none was found"
    elif kind != "mps":
        return f"torch.compile is not supported for the {kind} device here"
    return None


def check_compile(device: str | torch.device | None = None, option: str = "--compile") -> None:
    """Raise before any model loads when ``option`` (``--compile``) cannot work on ``device``.

    Raises:
        MIMAFaceError: naming ``option``, why, and what to do.
    """
    why = compile_unavailable(device)
    if why:
        raise MIMAFaceError(f"{option}: {why}. Install what is missing or run without {option}.")


def prepare_unet(unet: torch.nn.Module, compile: bool = False, channels_last: bool = False) -> torch.nn.Module:
    """Apply channels_last and/or ``torch.compile`` to ``unet`` in place (idempotent); returns it.

    channels_last: the 4-D weights (convolutions) are stored NHWC
    (``Module.to(memory_format=torch.channels_last)``); the UNet's 5-D video inputs are reshaped to
    4-D frames inside the model, so the convolutions run NHWC.
    compile: ``unet.compile()`` (TorchInductor, default mode, ``dynamic=False``): one compilation
    per input shape; the first call is logged with its cost.

    Raises:
        MIMAFaceError: ``compile`` where :func:`compile_unavailable` says it cannot run.
    """
    if channels_last and not getattr(unet, "_mimaface_channels_last", False):
        unet.to(memory_format=torch.channels_last)
        unet._mimaface_channels_last = True
    if compile and getattr(unet, "_compiled_call_impl", None) is None:
        try:
            device = next(unet.parameters()).device
        except StopIteration:
            device = None
        check_compile(device)
        unet.compile(dynamic=False)
        log.info("--compile: the UNet is compiled with torch.compile; the first denoising step of each new "
                 "clip shape pays the compilation (tens of seconds to minutes), later steps run the compiled code.")
    return unet
