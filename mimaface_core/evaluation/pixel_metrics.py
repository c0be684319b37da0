"""Same-identity reconstruction metrics between a generated and a driving 512 crop: PSNR, SSIM
(torchmetrics, Wang et al. 2004 with an 11-pixel Gaussian window, σ = 1.5) and LPIPS (Zhang et al.
2018, AlexNet, through torchmetrics). MIMAFace §4.1, Table 1.

Images are (1, 3, H, W) float32 RGB in [0, 1] (data range 1).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

#: PSNR of identical frames is infinite; it is reported as this cap (dB), so means and JSON stay finite.
PSNR_CAP_DB = 100.0
#: SSIM's Gaussian window (pixels) for σ = 1.5, torchmetrics' and scikit-image's default.
SSIM_WINDOW = 11
#: The ImageNet AlexNet file torchvision's ``AlexNet_Weights.IMAGENET1K_V1`` reads (LPIPS's backbone).
ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
ALEXNET_URL = "https://download.pytorch.org/models/" + ALEXNET_FILE


def psnr(generated: torch.Tensor, driving: torch.Tensor) -> float:
    """PSNR in dB, ``10·log10(1 / MSE)`` over all pixels and channels, capped at :data:`PSNR_CAP_DB`."""
    from torchmetrics.functional.image import peak_signal_noise_ratio

    value = float(peak_signal_noise_ratio(generated.double(), driving.double(), data_range=1.0))
    return PSNR_CAP_DB if not math.isfinite(value) else min(value, PSNR_CAP_DB)


def ssim(generated: torch.Tensor, driving: torch.Tensor) -> float:
    """Mean SSIM (Wang et al. 2004): Gaussian window 11, σ 1.5, K1 0.01, K2 0.03, averaged over the
    RGB channels and over the pixels at least 5 from the border (the pixels whose window lies inside
    the image, as Wang's MATLAB code and scikit-image report it), in float32 (within 1e-5 of a
    float64 computation); exactly 1 for identical images.

    The SSIM map is torchmetrics'; its own mean also counts the reflect-padded border, which we crop.
    """
    from torchmetrics.functional.image import structural_similarity_index_measure

    if torch.equal(generated, driving):
        return 1.0  # by definition; float32 round-off would give 1 - 1e-6
    _, full = structural_similarity_index_measure(generated.float(), driving.float(), data_range=1.0,
                                                  return_full_image=True)
    pad = (SSIM_WINDOW - 1) // 2
    return float(full[..., pad:-pad, pad:-pad].mean())


def hub_checkpoint(name: str) -> Path:
    """Where torch.hub keeps a downloaded file (``$TORCH_HOME/hub/checkpoints/<name>``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def why_unavailable(metric: str, module: str, needs: str, install: str, weights: str, file: str, url: str) -> str | None:
    """Why a metric with a library and a torch.hub weight file cannot run here (a sentence naming
    what to install, or the file and where to put it), or None when it can. Nothing is downloaded.

    Args:
        metric: its name in the message. module: the library to import. needs / install: what it
            is and how to get it. weights / file / url: the weight file's description, name and source.
    """
    from importlib import import_module

    try:
        import_module(module)
    except Exception as exc:  # noqa: BLE001 - any import failure means the same thing here
        return f"{metric} skipped: it needs {needs}, which does not import here ({type(exc).__name__}). {install}"
    path = hub_checkpoint(file)
    if not path.is_file():
        return f"{metric} skipped: {weights} are not on this machine; put {file} ({url}) at {path}."
    return None


def lpips_unavailable() -> str | None:
    """Why LPIPS cannot run here, or None (:func:`why_unavailable`)."""
    return why_unavailable("LPIPS", "torchvision", "torchvision (AlexNet)", "ComfyUI installs it; standalone, install "
                           "the torchvision build that matches your torch.", "AlexNet's weights", ALEXNET_FILE, ALEXNET_URL)


def lpips_network() -> torch.nn.Module:
    """The LPIPS metric module (torchmetrics, AlexNet v0.1) on the CPU, for :class:`LPIPS`: a host
    may build it once and keep it (ComfyUI's model manager) instead of :class:`LPIPS` building it.

    Raises:
        RuntimeError: LPIPS cannot run here (:func:`lpips_unavailable` says why).
    """
    reason = lpips_unavailable()
    if reason:
        raise RuntimeError(reason)
    from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

    return LearnedPerceptualImagePatchSimilarity(net_type="alex", reduction="sum", normalize=True)


class LPIPS:
    """LPIPS with the AlexNet backbone and the standard linear layers (v0.1, shipped with
    torchmetrics), on ``device``; ``metric``: a :func:`lpips_network` already built (moved to
    ``device``). Lower is more similar; 0 for identical images.

    Raises:
        RuntimeError: LPIPS cannot run here (:func:`lpips_unavailable` says why).
    """

    def __init__(self, device: str | torch.device = "cpu", metric: torch.nn.Module | None = None):
        self.metric = (metric if metric is not None else lpips_network()).to(device)
        self.device = torch.device(device)

    def __call__(self, generated: torch.Tensor, driving: torch.Tensor) -> float:
        """LPIPS of one pair of (1, 3, H, W) [0, 1] images."""
        with torch.inference_mode():
            value = float(self.metric.net(generated.float().to(self.device), driving.float().to(self.device),
                                          normalize=True).sum())
        return max(value, 0.0)
