"""Training data from a folder of the user's videos (any PyAV format, GIFs) or frame folders,
aligned and measured with the released recipe and cached to disk (docs/NUMERICS.md §17, beyond the release's
TFRecords: our own alignment and 3DMM extraction).

Per video, once (then read from the cache, so a second epoch or run does not run D3DFR again):
the 512 box crops of the released driver recipe (first-frame box, squashed frames), the D3DFR
coefficients and 256 matrices of every frame, the CurricularFace deep features of every frame (any
frame can be a source) and the SD VAE posterior mode of every crop. Frames without a face are kept
out of sampling; videos without any face are skipped and counted.

A sample (self-reenactment, as the release): a video, a source frame and ``frames`` consecutive
target frames of the same video, all with a face; the blended coefficients (source identity,
texture, lighting; target expression, pose, gaze), their render and its VAE mode are made per
sample. Every choice comes from a ``random.Random`` the loop seeds per step.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import FaceNotFoundError, MIMAFaceError
from ..media.video_in import VIDEO_SUFFIXES as MEDIA_VIDEO_SUFFIXES
from ..media.video_in import frame_files
from .step import TrainBatch

log = logging.getLogger("mimaface")

#: Clips read as videos: the containers of :data:`..media.VIDEO_SUFFIXES` and GIFs.
VIDEO_SUFFIXES = (*MEDIA_VIDEO_SUFFIXES, ".gif")
CACHE_VERSION = 1


@dataclass
class DataNetworks:
    """The frozen networks that prepare data: detector, D3DFR, CurricularFace, SD VAE, BFM09."""

    detector: object
    d3dfr: torch.nn.Module
    identity_encoder: torch.nn.Module
    vae: torch.nn.Module
    bfm: object


def find_videos(data_dir: str | Path) -> list[Path]:
    """The videos and frame folders directly or deeper under ``data_dir``, sorted.

    A frame folder is a folder holding at least two frame images (:func:`..media.frame_files`) and no video.

    Raises:
        MIMAFaceError: the folder is missing or holds no video and no frame folder.
    """
    root = Path(data_dir)
    if not root.is_dir():
        raise MIMAFaceError(f"--data: folder not found: {root}")
    videos = [p for p in sorted(root.rglob("*")) if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES]
    folders = []
    for d in sorted([root, *[p for p in root.rglob("*") if p.is_dir()]]):
        if len(frame_files(d)) >= 2 and not any(p.suffix.lower() in VIDEO_SUFFIXES for p in d.iterdir()):
            folders.append(d)
    found = sorted(videos + folders)
    if not found:
        raise MIMAFaceError(f"--data {root}: no video ({', '.join(sorted(VIDEO_SUFFIXES))}) and no folder of frames "
                            "found; put your training clips there.")
    return found


def _cache_key(path: Path, max_frames: int | None, root_tag: str) -> str:
    st = path.stat()
    raw = json.dumps([CACHE_VERSION, str(path.resolve()), st.st_size, int(st.st_mtime), max_frames, root_tag])
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def vae_mode(vae, images: torch.Tensor) -> torch.Tensor:
    """SD VAE posterior mode (unscaled) of (N, 3, H, W) images in [−1, 1] → (N, 4, H/8·, W/8·) float32."""
    param = next(vae.parameters())
    with torch.inference_mode():
        return vae.encode(images.to(param.device, param.dtype)).latent_dist.mode().float().cpu()


def extract_video(path: Path, nets: DataNetworks, max_frames: int | None = None,
                  progress: Callable[[int, "int | None"], None] | None = None) -> dict[str, torch.Tensor]:
    """Crops, coefficients, matrices, identity features and VAE modes of one video.

    Raises:
        FaceNotFoundError: no frame has a face.
    """
    from ..media.images import to_signed_tensor
    from ..media.video_in import iter_video_frames
    from ..motion.extract import extract_motion, source_identity

    crops: list[np.ndarray] = []
    motion = extract_motion(lambda: iter_video_frames(path, 1, max_frames, "training video"), nets.detector,
                            nets.d3dfr, progress=progress, on_crop=lambda i, c: crops.append(c))
    valid = ~motion.missing
    identity, modes = [], []
    for i, crop in enumerate(crops):
        x = to_signed_tensor(crop)
        identity.append(source_identity(nets.identity_encoder, x, motion.m256[i]).cpu() if valid[i]
                        else torch.zeros(1, 25088))
        modes.append(vae_mode(nets.vae, x))
    return {"crops": torch.from_numpy(np.stack(crops)), "coeffs": motion.coeffs.float(),
            "m256_inv": torch.from_numpy(np.asarray(motion.m256_inv, np.float32)),
            "identity": torch.cat(identity).float(), "vae_mode": torch.cat(modes),
            "valid": torch.from_numpy(valid.astype(np.uint8))}


@dataclass
class VideoData:
    """One cached video: its tensors (see :func:`extract_video`) and identity label (its index)."""

    path: Path
    label: int
    tensors: dict[str, torch.Tensor]

    def starts(self, frames: int) -> list[int]:
        """Start frames of ``frames`` consecutive frames that all have a face."""
        valid = self.tensors["valid"].bool().numpy()
        return [s for s in range(len(valid) - frames + 1) if valid[s:s + frames].all()]


def prepare_dataset(data_dir: str | Path, cache_dir: str | Path, nets: DataNetworks, *, max_frames: int | None = None,
                    root_tag: str = "", progress: Callable[[str, int, "int | None"], None] | None = None) -> list[VideoData]:
    """Extract (or read from the cache) every video of ``data_dir``.

    Args:
        cache_dir: where ``<video name>.<key>.safetensors`` files go (key: path, size, mtime,
            ``max_frames``, ``root_tag`` — e.g. the snapshot, whose D3DFR made the coefficients).
        max_frames: at most this many frames per video. progress: ``progress(video name, done, total)``.

    Returns:
        The videos with at least one face, labels 0..n−1 in path order.

    Raises:
        MIMAFaceError: no video in the folder. FaceNotFoundError: no video with a face (the count
        of skipped ones is in the message).
    """
    from safetensors.torch import load_file, save_file

    from ..media.outputs import atomic_output

    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    out, skipped = [], []
    for path in find_videos(data_dir):
        file = cache / f"{path.stem}.{_cache_key(path, max_frames, root_tag)}.safetensors"
        if file.is_file():
            tensors = load_file(str(file))
            log.info("training data: %s from the cache", path.name)
        else:
            try:
                tensors = extract_video(path, nets, max_frames,
                                        None if progress is None else lambda d, t, n=path.name: progress(n, d, t))
            except FaceNotFoundError:
                skipped.append(path.name)
                log.warning("training data: %s has no face; skipped", path.name)
                continue
            with atomic_output(file) as tmp:
                save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp))
        out.append(VideoData(path, len(out), tensors))
    if skipped:
        log.warning("training data: %d video(s) without a face skipped: %s", len(skipped), ", ".join(skipped))
    if not out:
        raise FaceNotFoundError(f"--data {data_dir}: none of its {len(skipped)} video(s) has a face "
                                f"({', '.join(skipped)}); use clips where one face is clearly visible.")
    return out


def usable(videos: list[VideoData], frames: int) -> list[VideoData]:
    """The videos with at least one run of ``frames`` consecutive frames with a face.

    Raises:
        MIMAFaceError: none (the message says how many frames are needed).
    """
    ok = [v for v in videos if v.starts(frames)]
    if not ok:
        raise MIMAFaceError(f"no training video has {frames} consecutive frames with a face; use longer clips or "
                            "fewer --frames.")
    return ok


def sample_batch(videos: list[VideoData], batch_size: int, frames: int, nets: DataNetworks,
                 rng: random.Random) -> tuple[TrainBatch, torch.Tensor]:
    """One batch: per row a video, a source frame and ``frames`` target frames (module docstring).

    Returns:
        (TrainBatch on the CPU, the source crops (B, 512, 512, 3) uint8 for the identity loss).
    """
    from ..morphable.render import render_motion
    from ..motion.retarget import retarget
    from ..networks.appearance_encoder import clip_preprocess

    pixels, targets, renders, coeffs, identity, labels, sources = [], [], [], [], [], [], []
    for _ in range(batch_size):
        video = rng.choice(videos)
        t = video.tensors
        valid = [i for i, ok in enumerate(t["valid"].tolist()) if ok]
        s = rng.choice(valid)
        start = rng.choice(video.starts(frames))
        index = list(range(start, start + frames))
        blended = retarget(t["coeffs"][s:s + 1], t["coeffs"][index])
        render = render_motion(nets.bfm, blended, t["m256_inv"][index].double().numpy())[0]
        renders.append(vae_mode(nets.vae, render))
        targets.append(t["vae_mode"][index])
        crop = t["crops"][s].numpy()
        sources.append(t["crops"][s])
        pixels.append(clip_preprocess(crop))
        coeffs.append(blended)
        identity.append(t["identity"][s:s + 1])
        labels.append(video.label)
    batch = TrainBatch(torch.cat(pixels), torch.stack(targets), torch.stack(renders), torch.cat(coeffs),
                       torch.cat(identity), torch.tensor(labels, dtype=torch.int64))
    return batch, torch.stack(sources)
