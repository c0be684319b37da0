"""FID (Heusel et al. 2017) between the generated and the driving frame sets (MIMAFace §4.1,
Table 1), accumulated frame by frame with torchmetrics' ``FrechetInceptionDistance`` (running
sums of features and their outer products: memory does not grow with the number of frames).

The standard features are the 2048-d pool features of the TF-ported Inception-v3 of
torch-fidelity (weights ``weights-inception-2015-12-05-6726825d.pth``), as pytorch-fid and most
papers use. Any feature module can be given instead (the tests do).
"""

from __future__ import annotations

import torch

from .pixel_metrics import why_unavailable

INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_URL = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/" + INCEPTION_FILE


def fid_unavailable() -> str | None:
    """Why the standard FID cannot run here, or None (:func:`.pixel_metrics.why_unavailable`)."""
    return why_unavailable("FID", "torch_fidelity", "torch-fidelity's Inception-v3", "pip install torch-fidelity (it "
                           "needs torchvision, which ComfyUI has).", "the Inception weights", INCEPTION_FILE, INCEPTION_URL)


def fid_network(feature: torch.nn.Module | None = None) -> torch.nn.Module:
    """The FID metric module (torchmetrics; ``feature`` as :class:`FIDAccumulator`'s) on the CPU:
    a host may build it once and keep it (ComfyUI's model manager); the accumulator resets it.

    Raises:
        RuntimeError: ``feature`` is None and the standard FID cannot run (the message says why).
    """
    from torchmetrics.image.fid import FrechetInceptionDistance

    if feature is None:
        reason = fid_unavailable()
        if reason:
            raise RuntimeError(reason)
        return FrechetInceptionDistance(feature=2048, normalize=True)
    return FrechetInceptionDistance(feature=feature, normalize=True)


class FIDAccumulator:
    """Frames in, one FID out.

    Args:
        feature: None for the standard 2048-d Inception features, or a module mapping (B, 3, H, W)
            float [0, 1] images to (B, D) features.
        device: where the features are computed.
        metric: a :func:`fid_network` already built (reset here, moved to ``device``).

    Raises:
        RuntimeError: ``feature`` is None and the standard FID cannot run (the message says why).
    """

    def __init__(self, feature: torch.nn.Module | None = None, device: str | torch.device = "cpu",
                 metric: torch.nn.Module | None = None):
        if metric is None:
            metric = fid_network(feature)
        metric.reset()
        self.metric = metric.to(device)
        self.device = torch.device(device)

    def add(self, image: torch.Tensor, real: bool) -> None:
        """Add (B, 3, H, W) float [0, 1] frames: ``real=True`` for driving frames, False for generated."""
        with torch.no_grad():
            self.metric.update(image.float().to(self.device), real=real)

    def value(self) -> float:
        """The FID (≥ 0; 0 for identical sets up to round-off).

        Raises:
            ValueError: fewer than 2 frames in either set.
        """
        if int(self.metric.real_features_num_samples) < 2 or int(self.metric.fake_features_num_samples) < 2:
            raise ValueError("FID needs at least 2 frames in each set.")
        return max(float(self.metric.compute()), 0.0)
