"""Photometric augmentation of the source image for the identity contrastive loss (paper §3,
"Identity Contrastive Loss", Fig. 4).

The paper augments the source image photometrically (grayscale, colour jitter, filters such as edge
enhancement, blur and sharpen, lighting, noise, vignetting, contrast) so that the CLIP class token
of an augmented view must still identify the person. The released code has no such augmentation in
use (docs/NUMERICS.md §17: its ColorJitter + RandomGrayscale is applied to a crop the loop never reads), so
every operation, range and probability here is this package's choice, documented below.

Conventions (every public function):

* ``images``: float tensor (B, 3, H, W), RGB, values in [0, 1], any float dtype (float16,
  bfloat16, float32, float64) and device. Computation runs in float32 (float64 stays float64); the
  result has the input's shape, dtype and device, clamped to [0, 1] after every operation.
* ``generator``: a ``torch.Generator``; every random number (which augmentations apply, their
  strengths, the noise) is drawn from it, on the generator's own device, then moved to the images'
  device. The same generator state and input therefore give the same output on any device.
* Strengths are drawn per image; an image of the batch never shares its parameters with another.
* Each single-operation function (:func:`grayscale` … :func:`gaussian_noise`) applies its operation
  to every image; :func:`photometric_augment` draws which of them each image gets.

Operations, in the order :func:`photometric_augment` applies them, with their default probability
(:data:`DEFAULT_PROBABILITIES`) and strength ranges:

================ ====== ====================================================================
name             p      operation (per image)
================ ====== ====================================================================
grayscale        0.2    ITU-R BT.601 luma (0.299, 0.587, 0.114) copied to the 3 channels
brightness       0.8    x·f,               f = 1 ± U[0.1, 0.3]
contrast         0.8    (x − m)·f + m,     m = mean luma of the image, f = 1 ± U[0.1, 0.3]
saturation       0.8    g + (x − g)·f,     g = per-pixel luma, f = 1 ± U[0.1, 0.3]
blur             0.5    separable Gaussian, σ ~ U[0.5, 2.0] px, radius 6, replicate border
sharpen          0.3    unsharp mask x + a·(x − blur_σ=1(x)), a ~ U[0.5, 1.5]
edge_enhance     0.3    x + a·L(x), L = 8-neighbour 3x3 Laplacian, a ~ U[0.25, 1.0]
                        (a = 0.5 is PIL's ``ImageFilter.EDGE_ENHANCE``)
lighting         0.5    x·(1 + a·r), r = linear ramp in [−1, 1] along a random direction,
                        a ~ U[0.2, 0.5]
vignette         0.5    x·(1 − s·d²), d = distance to the centre / corner distance, s ~ U[0.2, 0.6]
noise            0.5    x + σ·N(0, 1) per pixel and channel, σ ~ U[0.02, 0.08]
================ ====== ====================================================================

Sources of the choices: colour-jitter strength 0.3 follows the release's (unused) ColorJitter(0.3,
0.3, 0.3) (docs/NUMERICS.md §17); the grayscale (0.2), colour-jitter (0.8) and blur (0.5) probabilities follow
SimCLR's augmentation policy (Chen et al., "A Simple Framework for Contrastive Learning of Visual
Representations", ICML 2020, Appendix A); "1 ± U[0.1, 0.3]" keeps SimCLR-like strengths while
guaranteeing each applied jitter changes the image by at least 10 %. The filter, lighting,
vignetting and noise ranges are this package's choice (visible but identity-preserving at 224–512 px).
Implemented in plain torch (no torchvision dependency).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F

__all__ = [
    "AUGMENTATIONS",
    "DEFAULT_PROBABILITIES",
    "adjust_brightness",
    "adjust_contrast",
    "adjust_saturation",
    "edge_enhance",
    "gaussian_blur",
    "gaussian_noise",
    "grayscale",
    "lighting_gradient",
    "photometric_augment",
        "sharpen",
    "vignette",
]

#: ITU-R BT.601 luma weights (as PIL ``convert("L")`` and torchvision ``rgb_to_grayscale``).
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
#: Largest blur σ in pixels; the kernel radius is ``ceil(3·BLUR_SIGMA_MAX)`` for every image.
BLUR_SIGMA_MAX = 2.0

Augmentation = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


# --------------------------------------------------------------------------------------------------
# helpers


def _check_images(images: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"images must be a torch.Tensor (B, 3, H, W); got {type(images).__name__}.")
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must have shape (B, 3, H, W); got {tuple(images.shape)}.")
    if not images.is_floating_point():
        raise ValueError(f"images must be a float tensor with values in [0, 1]; got dtype {images.dtype}.")


def _check_generator(generator: torch.Generator) -> None:
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator; got {type(generator).__name__}.")


def _check(images: torch.Tensor, generator: torch.Generator) -> None:
    _check_images(images)
    _check_generator(generator)


def _work_dtype(images: torch.Tensor) -> torch.dtype:
    return torch.float64 if images.dtype == torch.float64 else torch.float32


def _uniform(n: int, low: float, high: float, generator: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    """(n,) values ~ U[low, high), drawn on the generator's device, returned on ``like``'s."""
    u = torch.rand(n, generator=generator, device=generator.device, dtype=torch.float64)
    return (low + (high - low) * u).to(like.device, _work_dtype(like))


def _jitter_factor(n: int, low: float, high: float, generator: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    """(n,) factors 1 ± U[low, high) with a random sign."""
    magnitude = _uniform(n, low, high, generator, like)
    sign = torch.where(_uniform(n, 0.0, 1.0, generator, like) < 0.5, -1.0, 1.0).to(magnitude)
    return 1.0 + sign * magnitude


def _per_image(values: torch.Tensor) -> torch.Tensor:
    """(B,) → (B, 1, 1, 1) for broadcasting over (B, C, H, W)."""
    return values.view(-1, 1, 1, 1)


def _luma(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) → (B, 1, H, W) BT.601 luma."""
    w = torch.tensor(LUMA_WEIGHTS, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(dim=1, keepdim=True)


def _apply(images: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Run ``fn`` in the working dtype, clamp to [0, 1], return in the input dtype."""
    out = fn(images.to(_work_dtype(images)))
    return out.clamp(0.0, 1.0).to(images.dtype)


def _depthwise(x: torch.Tensor, weight: torch.Tensor, pad: tuple[int, int, int, int]) -> torch.Tensor:
    """Per-image, per-channel convolution: x (B, C, H, W), weight (B, kh, kw) → (B, C, H, W)."""
    b, c, h, w = x.shape
    kernels = weight.repeat_interleave(c, dim=0)[:, None]  # (B·C, 1, kh, kw)
    flat = F.pad(x.reshape(1, b * c, h, w), pad, mode="replicate")
    return F.conv2d(flat, kernels, groups=b * c).reshape(b, c, h, w)


def _blur(x: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian blur with a per-image σ (B,), fixed radius ``ceil(3·BLUR_SIGMA_MAX)``."""
    radius = math.ceil(3 * BLUR_SIGMA_MAX)
    taps = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-(taps[None] ** 2) / (2 * sigmas[:, None] ** 2))
    k = k / k.sum(dim=1, keepdim=True)  # (B, K)
    x = _depthwise(x, k[:, None, :], (radius, radius, 0, 0))
    return _depthwise(x, k[:, :, None], (0, 0, radius, radius))


def _grid(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(u, v) pixel-centre coordinates in [-1, 1], shapes (1, 1, 1, W) and (1, 1, H, 1)."""
    h, w = x.shape[-2:]
    u = torch.linspace(-1.0, 1.0, w, dtype=x.dtype, device=x.device).view(1, 1, 1, w)
    v = torch.linspace(-1.0, 1.0, h, dtype=x.dtype, device=x.device).view(1, 1, h, 1)
    return u, v


# --------------------------------------------------------------------------------------------------
# the augmentations: each (images, generator) → images, always applied, per-image strength


def grayscale(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Grayscale: BT.601 luma copied to the three channels. Draws nothing from ``generator`` (kept
    for the common signature). (B, 3, H, W) → same."""
    _check(images, generator)
    return _apply(images, lambda x: _luma(x).expand_as(x))


def adjust_brightness(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Brightness jitter: x·f with f = 1 ± U[0.1, 0.3] per image. (B, 3, H, W) → same."""
    _check(images, generator)
    f = _per_image(_jitter_factor(images.shape[0], 0.1, 0.3, generator, images))
    return _apply(images, lambda x: x * f)


def adjust_contrast(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Contrast jitter: (x − m)·f + m, m = the image's mean luma, f = 1 ± U[0.1, 0.3]. (B, 3, H, W) → same."""
    _check(images, generator)
    f = _per_image(_jitter_factor(images.shape[0], 0.1, 0.3, generator, images))

    def fn(x: torch.Tensor) -> torch.Tensor:
        m = _luma(x).mean(dim=(1, 2, 3), keepdim=True)
        return (x - m) * f + m

    return _apply(images, fn)


def adjust_saturation(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Saturation jitter: g + (x − g)·f, g = per-pixel luma, f = 1 ± U[0.1, 0.3]. (B, 3, H, W) → same."""
    _check(images, generator)
    f = _per_image(_jitter_factor(images.shape[0], 0.1, 0.3, generator, images))

    def fn(x: torch.Tensor) -> torch.Tensor:
        g = _luma(x)
        return g + (x - g) * f

    return _apply(images, fn)


def gaussian_blur(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Gaussian blur, σ ~ U[0.5, 2.0] px per image, replicate border. (B, 3, H, W) → same."""
    _check(images, generator)
    sigmas = _uniform(images.shape[0], 0.5, BLUR_SIGMA_MAX, generator, images)
    return _apply(images, lambda x: _blur(x, sigmas))


def sharpen(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Unsharp mask: x + a·(x − blur_σ=1(x)), a ~ U[0.5, 1.5] per image. (B, 3, H, W) → same."""
    _check(images, generator)
    amount = _per_image(_uniform(images.shape[0], 0.5, 1.5, generator, images))

    def fn(x: torch.Tensor) -> torch.Tensor:
        ones = torch.ones(x.shape[0], dtype=x.dtype, device=x.device)
        return x + amount * (x - _blur(x, ones))

    return _apply(images, fn)


def edge_enhance(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Edge enhancement: x + a·L(x), L the 8-neighbour 3x3 Laplacian (8·centre − neighbours),
    a ~ U[0.25, 1.0] per image (a = 0.5 equals PIL's ``ImageFilter.EDGE_ENHANCE`` kernel).
    (B, 3, H, W) → same."""
    _check(images, generator)
    amount = _uniform(images.shape[0], 0.25, 1.0, generator, images)

    def fn(x: torch.Tensor) -> torch.Tensor:
        lap = -torch.ones(3, 3, dtype=x.dtype, device=x.device)
        lap[1, 1] = 8.0
        identity = torch.zeros_like(lap)
        identity[1, 1] = 1.0
        kernels = identity[None] + amount.view(-1, 1, 1) * lap[None]  # (B, 3, 3)
        return _depthwise(x, kernels, (1, 1, 1, 1))

    return _apply(images, fn)


def lighting_gradient(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Directional lighting: x·(1 + a·r), r a linear ramp in [−1, 1] along an angle θ ~ U[0, 2π),
    a ~ U[0.2, 0.5] per image (gain between 1 − a and 1 + a). (B, 3, H, W) → same."""
    _check(images, generator)
    n = images.shape[0]
    theta = _per_image(_uniform(n, 0.0, 2 * math.pi, generator, images))
    amount = _per_image(_uniform(n, 0.2, 0.5, generator, images))

    def fn(x: torch.Tensor) -> torch.Tensor:
        u, v = _grid(x)
        c, s = torch.cos(theta), torch.sin(theta)
        ramp = (c * u + s * v) / (c.abs() + s.abs())
        return x * (1.0 + amount * ramp)

    return _apply(images, fn)


def vignette(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Vignetting: x·(1 − s·d²), d = distance to the image centre divided by the corner distance
    (0 at the centre, 1 at the corners), s ~ U[0.2, 0.6] per image. (B, 3, H, W) → same."""
    _check(images, generator)
    strength = _per_image(_uniform(images.shape[0], 0.2, 0.6, generator, images))

    def fn(x: torch.Tensor) -> torch.Tensor:
        u, v = _grid(x)
        d2 = (u**2 + v**2) / 2.0
        return x * (1.0 - strength * d2)

    return _apply(images, fn)


def gaussian_noise(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Additive Gaussian noise, σ ~ U[0.02, 0.08] per image, independent per pixel and channel.
    (B, 3, H, W) → same."""
    _check(images, generator)
    sigma = _per_image(_uniform(images.shape[0], 0.02, 0.08, generator, images))
    noise = torch.randn(images.shape, generator=generator, device=generator.device, dtype=torch.float32)
    noise = noise.to(images.device, _work_dtype(images))
    return _apply(images, lambda x: x + sigma * noise)


#: Every augmentation by name, in the order :func:`photometric_augment` applies them.
AUGMENTATIONS: dict[str, Augmentation] = {
    "grayscale": grayscale,
    "brightness": adjust_brightness,
    "contrast": adjust_contrast,
    "saturation": adjust_saturation,
    "blur": gaussian_blur,
    "sharpen": sharpen,
    "edge_enhance": edge_enhance,
    "lighting": lighting_gradient,
    "vignette": vignette,
    "noise": gaussian_noise,
}

#: Per-image probability of each augmentation (sources in the module docstring).
DEFAULT_PROBABILITIES: dict[str, float] = {
    "grayscale": 0.2,
    "brightness": 0.8,
    "contrast": 0.8,
    "saturation": 0.8,
    "blur": 0.5,
    "sharpen": 0.3,
    "edge_enhance": 0.3,
    "lighting": 0.5,
    "vignette": 0.5,
    "noise": 0.5,
}


def _resolve_probabilities(probabilities: Mapping[str, float] | None) -> dict[str, float]:
    merged = dict(DEFAULT_PROBABILITIES)
    if probabilities is None:
        return merged
    unknown = sorted(set(probabilities) - set(AUGMENTATIONS))
    if unknown:
        raise ValueError(f"probabilities has unknown augmentation names {unknown}; known: {list(AUGMENTATIONS)}.")
    for name, p in probabilities.items():
        if not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"probabilities[{name!r}] must be in [0, 1]; got {p}.")
        merged[name] = float(p)
    return merged


def photometric_augment(
    images: torch.Tensor,
    generator: torch.Generator,
    probabilities: Mapping[str, float] | None = None,
) -> torch.Tensor:
    """A random photometric augmentation of each source image (paper §3, Fig. 4).

    For every augmentation of :data:`AUGMENTATIONS`, in that order, each image independently gets it
    with its probability; the random numbers are drawn in a fixed order whatever the outcome, so a
    generator with the same seed reproduces the output exactly.

    Args:
        images: (B, 3, H, W) float RGB in [0, 1] (any float dtype, any device).
        generator: the ``torch.Generator`` every random number is drawn from.
        probabilities: per-augmentation probabilities overriding :data:`DEFAULT_PROBABILITIES`
            (names of :data:`AUGMENTATIONS`, values in [0, 1]); 1 always applies, 0 never.

    Returns:
        (B, 3, H, W) in [0, 1], the input's dtype and device.

    Raises:
        ValueError: ``images`` not a (B, 3, H, W) float tensor, or bad ``probabilities``.
        TypeError: ``generator`` not a ``torch.Generator``.
    """
    _check(images, generator)
    probs = _resolve_probabilities(probabilities)
    out = images
    for name, fn in AUGMENTATIONS.items():
        chosen = _per_image(_uniform(images.shape[0], 0.0, 1.0, generator, images) < probs[name])
        augmented = fn(out, generator)
        out = torch.where(chosen, augmented, out)
    return out.clamp(0.0, 1.0)
