"""The torch device and dtype to run on: the best available when not given (CUDA in float16, else
the CPU in float32; Apple's MPS only when asked for), and an impossible choice refused with an
error naming the argument (``--device`` on the command line, ``device=`` in the API)."""

from __future__ import annotations

import torch

from ..errors import MIMAFaceError

DTYPE_NAMES = ("float32", "float16", "bfloat16")


def best_device() -> str:
    """"cuda" when a CUDA (or ROCm) device is usable, else "cpu"."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_device(device=None, dtype=None, *, device_arg: str = "device=", dtype_arg: str = "dtype=",
                   cpu_float16: bool = False):
    """The device and dtype to use, refused early when this machine cannot provide them.

    Args:
        device: None (the best available, :func:`best_device`), a name ("cpu", "cuda", "cuda:1",
            "mps") or a ``torch.device``.
        dtype: None (float16 on CUDA, else float32), a ``torch.dtype`` or one of
            :data:`DTYPE_NAMES`.
        device_arg, dtype_arg: how the caller names the arguments in messages ("--device" on the
            command line).
        cpu_float16: accept float16 on the CPU (weights kept there to be moved to a GPU later,
            as ComfyUI's offload device does); otherwise it is refused (too slow / unsupported to
            run there).

    Returns:
        (``torch.device``, ``torch.dtype``).

    Raises:
        MIMAFaceError: not a device name, a device this machine does not have, float16 on the
            CPU, bfloat16 on a GPU without it, or an unsupported dtype; the message names the
            argument and what to use instead.
    """
    name = str(device) if device is not None else best_device()

    def use(value: str) -> str:  # the suggestion in the caller's own syntax: "--device cpu" / "device='cpu'"
        return f"{device_arg} {value}" if device_arg.startswith("-") else f"{device_arg.rstrip('=')}={value!r}"

    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError) as exc:
        raise MIMAFaceError(f"{device_arg} {name!r}: not a device name ({exc}); use cpu, cuda, cuda:1 or mps.") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise MIMAFaceError(f"{device_arg} {name!r}: CUDA is not available on this machine (torch "
                                f"{torch.__version__}); use {use('cpu')} (or leave it out: the best device is chosen), or "
                                "install a CUDA build of torch.")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise MIMAFaceError(f"{device_arg} {name}: this machine has {torch.cuda.device_count()} CUDA device(s).")
    elif dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if not (mps is not None and mps.is_available()):
            raise MIMAFaceError(f"{device_arg} mps: Apple's MPS is not available here; use {use('cpu')}.")
    elif dev.type != "cpu":
        raise MIMAFaceError(f"{device_arg} {name}: only cpu, cuda and mps are supported.")
    if dtype is None:
        return dev, (torch.float16 if dev.type == "cuda" else torch.float32)
    if isinstance(dtype, str):
        if dtype not in DTYPE_NAMES:
            raise MIMAFaceError(f"{dtype_arg} {dtype!r}: use one of {', '.join(DTYPE_NAMES)}.")
        dtype = getattr(torch, dtype)
    if dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise MIMAFaceError(f"{dtype_arg} {dtype}: use torch.float32, torch.float16 or torch.bfloat16.")
    if dev.type == "cpu" and dtype == torch.float16 and not cpu_float16:
        raise MIMAFaceError(f"{dtype_arg} float16 needs a GPU (half precision is not supported for these networks on "
                            f"the CPU); use float32 (or bfloat16) on the CPU.")
    if dev.type == "cuda" and dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
        raise MIMAFaceError(f"{dtype_arg} bfloat16: {torch.cuda.get_device_name(dev)} does not support it; use float16.")
    return dev, dtype
