"""Training MIMAFace (paper §3.4, "Training"): the released two-stage step (image stage: UNet, MIA
module and CLIP; video stage: motion modules, conv_in and the MIA module), the paper's identity
contrastive loss, data from a folder of the user's videos, and the ``train`` command.

Attributes are resolved lazily (PEP 562) so importing the package loads no training code.
"""

from __future__ import annotations

from .._lazy import lazy_getattr

_EXPORTS: dict[str, str] = {
    "TrainModels": ".models", "load_training_models": ".models", "set_trainable": ".models",
    "TrainBatch": ".step", "StepDraws": ".step", "StepOptions": ".step", "draw_step": ".step",
    "forward_step": ".step", "make_optimizer": ".step", "optimizer_step": ".step",
    "IDTokenBank": ".identity_loss", "IdentityContrastiveLoss": ".identity_loss",
    "identity_contrastive_loss": ".identity_loss", "clip_id_tokens": ".identity_loss",
    "photometric_augment": ".augment",
}

__getattr__ = lazy_getattr(__name__, _EXPORTS)
