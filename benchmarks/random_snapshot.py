"""Write a MIMAFace snapshot folder with random weights, at the released sizes or reduced (issue 24).

Usage: python benchmarks/random_snapshot.py OUT [--size full|reduced|tiny] [--seed 0]
       [--complete-3dunet] [--no-vae]

OUT gets the released layout that ``load_mimaface`` reads (docs/WEIGHTS.md §2), in the released file
formats, so that speed and memory can be measured on any machine without a download:

* ``checkpoints/image/pretrained_unet/``: the SD1.5 UNet with a 13-channel conv_in (diffusers folder;
  the config is ``tests/fixtures/manifests/pretrained_unet_config.json``, docs/WEIGHTS.md §4);
* ``checkpoints/video/3dunet.pth``: the AnimateDiff v3 motion modules and conv_in in the official key
  layout, with their ``pos_encoder.pe`` tables (docs/WEIGHTS.md §5). The released file also holds a
  second copy of the 2D UNet that inference never reads; ``--complete-3dunet`` writes it too
  (about 3.4 GB more at full size);
* ``checkpoints/{image,video}/vision_encoder/``: CLIP ViT-L/14 vision tower (transformers folder);
* ``checkpoints/{image,video}/mim.pth``: the MIM at its only size;
* ``models/D3DFR/netG_epoch_25.pth`` and ``models/ArcFace/CurricularFace_Backbone.pth`` (``module.``
  prefixed keys, as released), at their only sizes;
* ``models/D3DFR/BFM09_model_info.mat``: a BFM stand-in with the fields and shapes the loader reads
  (docs/WEIGHTS.md §11): a regular grid mesh of about 35,700 vertices and 70,700 triangles (the
  real model has 35,709 and 70,789) with random identity, expression and texture bases;
* ``sd-vae-ft-mse/``: the SD VAE (diffusers folder), unless ``--no-vae``.

Sizes: ``full`` is the release (UNet 320/640/1280/1280, 24 CLIP layers, VAE 128/256/512/512:
about 2.6 GB of UNet + 1.2 GB of CLIP + 0.3 GB of VAE, in float32). ``reduced`` keeps every block,
layer count and the 768-wide context but narrows the UNet to 64/128/256/256 channels, the VAE to
32/64/128/128 and CLIP to 4 layers, for CPU benchmarks; ``tiny`` narrows the UNet to 32/64/128/128,
the VAE to six blocks of 32 (32x downsampling instead of 8x: the UNet then runs at 16x16 latents
for 512x512 frames instead of 64x64, so that a CPU can sample a clip in seconds) and CLIP to 2 layers. The MIM, D3DFR, CurricularFace and BFM have one size.
The values are random (seeded): weights ~ N(0, 1/fan_in), norm scales ~ 1 + N(0, 0.1²), biases
~ N(0, 0.1²), BatchNorm running variances ≥ 1; they produce noise, not faces. Writing needs no
network. Prints the size written and the element count of each component.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MANIFESTS = ROOT / "tests" / "fixtures" / "manifests"

#: The three sizes: UNet widths, VAE widths and CLIP layers (the rest is the release's).
SIZES = {
    "full": dict(unet=(320, 640, 1280, 1280), vae=(128, 256, 512, 512), clip_layers=24),
    "reduced": dict(unet=(64, 128, 256, 256), vae=(32, 64, 128, 128), clip_layers=4),
    # six VAE blocks: 32x downsampling, so the UNet runs at 16x16 latents for 512x512 frames
    "tiny": dict(unet=(32, 64, 128, 128), vae=(32, 32, 32, 32, 32, 32), clip_layers=2),
}

#: sd-vae-ft-mse's config.json (diffusers AutoencoderKL, SD1.x; docs/WEIGHTS.md §12).
VAE_CONFIG = {
    "_class_name": "AutoencoderKL", "act_fn": "silu", "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D"] * 4, "in_channels": 3, "latent_channels": 4,
    "layers_per_block": 2, "norm_num_groups": 32, "out_channels": 3, "sample_size": 256,
    "scaling_factor": 0.18215, "up_block_types": ["UpDecoderBlock2D"] * 4,
}
#: openai/clip-vit-large-patch14's vision tower (the fields of the released vision_encoder/config.json).
CLIP_CONFIG = {
    "architectures": ["CLIPVisionModel"], "attention_dropout": 0.0, "hidden_act": "quick_gelu",
    "hidden_size": 1024, "image_size": 224, "initializer_factor": 1.0, "initializer_range": 0.02,
    "intermediate_size": 4096, "layer_norm_eps": 1e-05, "model_type": "clip_vision_model",
    "num_attention_heads": 16, "num_channels": 3, "num_hidden_layers": 24, "patch_size": 14,
    "projection_dim": 768, "torch_dtype": "float32",
}


def unet_config(size: str) -> dict:
    """The ``pretrained_unet/config.json`` of a size: the release's, with the UNet widths of ``size``."""
    config = json.loads((MANIFESTS / "pretrained_unet_config.json").read_text())
    config = config.get("config_json", config)
    return {**config, "block_out_channels": list(SIZES[size]["unet"])}


def random_state(shapes: dict[str, tuple[tuple[int, ...], torch.dtype]], g: torch.Generator) -> dict[str, torch.Tensor]:
    """Random tensors for ``{key: (shape, dtype)}`` by the rule of the module docstring."""
    out = {}
    for key, (shape, dtype) in shapes.items():
        if not dtype.is_floating_point:
            out[key] = torch.zeros(shape, dtype=dtype)
        elif key.endswith("running_var"):
            out[key] = 1.0 + 0.1 * torch.randn(shape, generator=g).abs()
        elif key.endswith("running_mean") or len(shape) <= 1 and not key.endswith("weight"):
            out[key] = 0.1 * torch.randn(shape, generator=g)
        elif len(shape) <= 1:
            out[key] = 1.0 + 0.1 * torch.randn(shape, generator=g)
        else:
            out[key] = torch.randn(shape, generator=g) / math.sqrt(math.prod(shape[1:]))
    return out


def shapes_of(module: torch.nn.Module) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    return {k: (tuple(v.shape), v.dtype) for k, v in module.state_dict().items()}


def official_motion_key(key: str) -> str:
    """A diffusers ``UNetMotionModel`` motion-module key in the official AnimateDiff naming of 3dunet.pth
    (the inverse of diffusers' ``convert_animatediff_checkpoint_to_diffusers``)."""
    head, _, rest = key.partition(".motion_modules.")
    index, _, rest = rest.partition(".")
    for new, old in ((".norm1", ".norms.0"), (".norm2", ".norms.1"), (".norm3", ".ff_norm"),
                     (".attn1", ".attention_blocks.0"), (".attn2", ".attention_blocks.1")):
        rest = ("." + rest).replace(new + ".", old + ".")[1:]
    return f"{head}.motion_modules.{index}.temporal_transformer.{rest}"


def motion_state(config: dict, g: torch.Generator) -> dict[str, torch.Tensor]:
    """3dunet.pth's used tensors (conv_in + motion modules + pos_encoder.pe), official names, random."""
    from diffusers.loaders.single_file_utils import convert_animatediff_checkpoint_to_diffusers

    from mimaface_core.networks.denoiser import build_unet3d, positional_tables

    unet = build_unet3d(config, device="meta")
    shapes = {k: s for k, s in shapes_of(unet).items()
              if ("motion_modules." in k and not k.endswith("pos_embed.pe")) or k.startswith("conv_in.")}
    diffusers_state = random_state(shapes, g)
    state = {(official_motion_key(k) if "motion_modules." in k else k): v for k, v in diffusers_state.items()}
    back = convert_animatediff_checkpoint_to_diffusers(state)
    assert set(back) == set(diffusers_state), "official motion naming does not round-trip through diffusers"
    for key, table in positional_tables(unet).items():  # two copies per block in the release
        prefix = official_motion_key(key)[: -len(".pos_embed.pe")]
        for j in (0, 1):
            state[f"{prefix}.attention_blocks.{j}.pos_encoder.pe"] = table.clone()
    return state


def write_bfm(path: Path, grid: int, g: torch.Generator) -> dict[str, tuple]:
    """A BFM09_model_info.mat stand-in: a ``grid`` x ``grid`` dome mesh with random bases (1-based indices)."""
    from scipy.io import savemat

    rng = np.random.default_rng(int(torch.randint(0, 2**31, (1,), generator=g)))
    n = grid * grid
    u, v = np.meshgrid(np.linspace(-1, 1, grid), np.linspace(-1, 1, grid))
    xyz = np.stack([0.8 * u, 1.0 * v, 0.6 * np.sqrt(np.clip(1 - 0.5 * (u**2 + v**2), 0, None))], -1).reshape(-1)
    quads = np.arange(n).reshape(grid, grid)[:-1, :-1].reshape(-1)
    tri = np.concatenate([np.stack([quads, quads + grid, quads + 1], 1),
                          np.stack([quads + 1, quads + grid, quads + grid + 1], 1)])
    point_buf = np.zeros((n, 8), dtype=np.float64)
    filled = np.zeros(n, dtype=np.int64)
    for t, corners in enumerate(tri):
        for vert in corners:
            point_buf[vert, filled[vert]] = t + 1
            filled[vert] += 1
    fields = {
        "meanshape": xyz[None].astype(np.float32),
        "idBase": (0.01 * rng.standard_normal((3 * n, 80))).astype(np.float32),
        "exBase": 0.01 * rng.standard_normal((3 * n, 64)),
        "meantex": (160 + 20 * rng.standard_normal((1, 3 * n))).astype(np.float32),
        "texBase": (2 * rng.standard_normal((3 * n, 80))).astype(np.float32),
        "tri": (tri + 1).astype(np.float64),
        "point_buf": point_buf,
        "keypoints": np.linspace(1, n, 68).round()[None],
        "skinmask": np.ones((1, n)),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    savemat(str(path), fields)
    return {k: a.shape for k, a in fields.items()}


def _save_folder(folder: Path, config: dict, state: dict, name: str) -> None:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    for file, write in ((name, lambda tmp: save_file(state, str(tmp), metadata={"format": "pt"})),
                        ("config.json", lambda tmp: tmp.write_text(json.dumps(config, indent=1)))):
        tmp = folder / (file + ".partial")
        write(tmp)
        tmp.replace(folder / file)


def write_random_snapshot(out: str | Path, size: str = "reduced", seed: int = 0, complete_3dunet: bool = False,
                          vae: bool = True, log=print) -> dict[str, int]:
    """Write a random-weight snapshot of ``size`` ("full", "reduced" or "tiny") into ``out``.

    Returns {component: number of elements written}. Raises ValueError for an unknown size.
    Every file is written under a temporary name and renamed (no half-written snapshot is left
    looking complete: ``config.json`` files are written last inside each folder).
    """
    if size not in SIZES:
        raise ValueError(f"--size must be one of {tuple(SIZES)}, got {size!r}.")
    from mimaface_core.morphable.d3dfr import D3DFRRegressor
    from mimaface_core.networks.appearance_encoder import build_clip_vision
    from mimaface_core.networks.denoiser import build_unet2d
    from mimaface_core.networks.identity_encoder import IR101
    from mimaface_core.networks.mia import MIMModule
    from mimaface_core.weights.layout import BFM_PATH, RELEASED_FOLDERS, RELEASED_PTH, VAE_FOLDER

    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    counts = {}

    def count(name, state):
        counts[name] = sum(t.numel() for t in state.values())
        log(f"  {name:22s} {counts[name] / 1e6:9.1f} M elements")

    def save_pth(name, state, module_prefix=False):
        dest = root / RELEASED_PTH[name]
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".partial")
        if module_prefix:  # D3DFR / CurricularFace: DataParallel's prefix, zip format
            torch.save({"module." + k: v for k, v in state.items()}, tmp)
        else:  # 3dunet.pth / mim.pth: a plain dict in torch's legacy serialization, as released
            torch.save(state, tmp, _use_new_zipfile_serialization=False)
        tmp.replace(dest)
        count(name, state)

    config = unet_config(size)
    unet2d = random_state(shapes_of(build_unet2d(config, device="meta")), g)
    _save_folder(root / RELEASED_FOLDERS["pretrained_unet"], config, unet2d, "diffusion_pytorch_model.safetensors")
    count("pretrained_unet", unet2d)
    motion = motion_state(config, g)
    if complete_3dunet:  # the released file's unused second 2D UNet, with values of its own
        motion = {**random_state(shapes_of(build_unet2d(config, device="meta")), g), **motion}
    del unet2d
    save_pth("unet3d", motion)
    del motion
    clip_config = {**CLIP_CONFIG, "num_hidden_layers": SIZES[size]["clip_layers"]}
    clip_state = random_state(shapes_of(build_clip_vision(clip_config, device="meta")), g)
    clip_state = {k if k.startswith("vision_model.") else "vision_model." + k: v for k, v in clip_state.items()
                  if not k.endswith("position_ids")}
    for stage in ("image", "video"):
        _save_folder(root / RELEASED_FOLDERS[f"{stage}_vision_encoder"], clip_config, clip_state, "model.safetensors")
        count(f"{stage}_vision_encoder", clip_state)
    del clip_state
    for stage in ("image", "video"):
        with torch.device("meta"):
            mim = MIMModule()
        save_pth(f"{stage}_mim", random_state(shapes_of(mim), g))
    with torch.device("meta"):
        d3dfr, ir101 = D3DFRRegressor(), IR101()
    save_pth("d3dfr", random_state(shapes_of(d3dfr), g), module_prefix=True)
    save_pth("curricularface", random_state(shapes_of(ir101), g), module_prefix=True)
    bfm_shapes = write_bfm(root / BFM_PATH, 189 if size == "full" else 64, g)
    log(f"  {'BFM stand-in':22s} {bfm_shapes['meanshape'][1] // 3} vertices, {bfm_shapes['tri'][0]} triangles")
    if vae:
        from diffusers import AutoencoderKL

        blocks = len(SIZES[size]["vae"])
        vae_config = {**VAE_CONFIG, "block_out_channels": list(SIZES[size]["vae"]),
                      "down_block_types": ["DownEncoderBlock2D"] * blocks, "up_block_types": ["UpDecoderBlock2D"] * blocks}
        with torch.device("meta"):
            model = AutoencoderKL.from_config({k: v for k, v in vae_config.items() if not k.startswith("_")})
        state = random_state(shapes_of(model), g)
        _save_folder(root / VAE_FOLDER, vae_config, state, "diffusion_pytorch_model.safetensors")
        count("sd-vae-ft-mse", state)
    return counts


def describe(size: str) -> str:
    """One line naming what a size is (printed by the benchmarks that use it)."""
    s = SIZES[size]
    return (f"random snapshot '{size}': UNet widths {'/'.join(map(str, s['unet']))}, VAE widths "
            f"{'/'.join(map(str, s['vae']))}, CLIP ViT-L/14 with {s['clip_layers']} layers"
            + f" (latents {512 // 2 ** (len(s['vae']) - 1)}x{512 // 2 ** (len(s['vae']) - 1)} for 512x512 frames)"
            + (" (the released sizes)" if size == "full" else " (reduced from the released sizes)"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path, help="the folder to write (created)")
    p.add_argument("--size", choices=tuple(SIZES), default="full", help="full = the released sizes (default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--complete-3dunet", action="store_true", help="also write 3dunet.pth's unused 2D UNet copy")
    p.add_argument("--no-vae", action="store_true", help="leave out sd-vae-ft-mse/")
    args = p.parse_args()
    t0 = time.perf_counter()
    print(f"writing {describe(args.size)} into {args.out}")
    counts = write_random_snapshot(args.out, args.size, args.seed, args.complete_3dunet, not args.no_vae)
    print(f"wrote {sum(counts.values()) / 1e6:.1f} M random elements ({args.size} size) in "
          f"{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
