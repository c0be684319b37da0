"""Several faces: every face of a group photo animated by its own tracked face of a driving video
(or by one track, or by speech), pasted back together (beyond the release, which animates one face).

1. :func:`plan_faces`: the source's faces left to right (``motion.sources``), the driver's face
   tracks (``face.tracks``), one motion per track (``motion.tracks``), and which track drives which
   face (:class:`FaceMap`: ``auto``, ``"0:1,1:0"`` = face:track, ``"all:0"`` = track 0 drives every
   face).
2. :func:`iter_animate_faces`: each driven face runs the single-face pipeline
   (``pipeline.iter_animate``) with the same options and seed, so its crop frames equal a
   single-face run on that face alone; the faces advance clip by clip in step (one clip's state
   per face, the networks shared), and each output frame is composited (``face.paste_faces``) and
   handed on as soon as every face has made it.

A source face without a driver stays as in the photo. Where a track is absent the face holds its
last pose (``motion.tracks``); before the track's first frame it keeps the photo's pose
(:func:`driving_for_face`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from .errors import MIMAFaceError
from .face.detection import FaceDetector
from .face.paste_faces import paste_faces
from .face.tracks import FaceTracks, TrackingOptions, track_faces
from .media.images import to_rgb_uint8
from .motion.extract import SourceFace
from .motion.sequence import MotionSequence
from .motion.sources import encode_source_faces
from .motion.tracks import extract_track_motions

_PAIR = re.compile(r"^\s*(\d+|all)\s*:\s*(\d+)\s*$")


def parse_faces(text: str | None, what: str = "--faces") -> list[int] | None:
    """``"all"`` (or None/empty) → None; ``"0,2"`` → [0, 2] (face indices, left to right).

    Raises:
        MIMAFaceError: not "all" nor a comma-separated list of indices ≥ 0 (the message names ``what``).
    """
    if text is None or str(text).strip().lower() in ("", "all"):
        return None
    try:
        faces = [int(p) for p in str(text).split(",")]
    except ValueError:
        faces = [-1]
    if any(f < 0 for f in faces) or len(set(faces)) != len(faces):
        raise MIMAFaceError(f"{what} {text!r}: use 'all' or distinct face indices separated by commas, "
                            "e.g. 0,2 (0 = the leftmost face of the source).")
    return sorted(faces)


@dataclass(frozen=True)
class FaceMap:
    """Which driving track drives which source face.

    Attributes:
        kind: "auto" (the tracks left to right where they first appear together drive the faces
            left to right), "all" (``track`` drives every face) or "explicit" (``pairs``).
        track: the track of kind "all".
        pairs: kind "explicit": {face: track}.
    """

    kind: str = "auto"
    track: int | None = None
    pairs: dict = field(default_factory=dict)

    @staticmethod
    def parse(text: str | None, what: str = "--face-map") -> "FaceMap":
        """``auto``, ``all:T`` or ``F:T,F:T,...`` (face:track, indices from 0).

        Raises:
            MIMAFaceError: anything else, or a face given twice (the message names ``what``).
        """
        if text is None or str(text).strip().lower() in ("", "auto"):
            return FaceMap()
        pairs = {}
        for part in str(text).split(","):
            m = _PAIR.match(part)
            if m is None:
                raise MIMAFaceError(f"{what} {text!r}: use auto, all:TRACK or FACE:TRACK pairs separated by commas "
                                    "(e.g. 0:1,1:0 makes track 1 drive face 0 and track 0 drive face 1).")
            face, track = m.group(1), int(m.group(2))
            if face == "all":
                if len(str(text).split(",")) != 1:
                    raise MIMAFaceError(f"{what} {text!r}: all:TRACK stands alone.")
                return FaceMap("all", track)
            if int(face) in pairs:
                raise MIMAFaceError(f"{what} {text!r}: face {face} is given twice.")
            pairs[int(face)] = track
        return FaceMap("explicit", pairs=pairs)

    def check_faces(self, n_faces: int, what: str = "--face-map") -> None:
        """Every face named exists (``n_faces`` found in the source)."""
        bad = sorted(f for f in self.pairs if f >= n_faces)
        if bad:
            raise MIMAFaceError(f"{what}: face {bad[0]} does not exist; the source has {n_faces} face(s) "
                                f"(0..{n_faces - 1}, left to right).")

    def check_tracks(self, n_tracks: int, what: str = "--face-map") -> None:
        """Every track named exists (``n_tracks`` found in the driver)."""
        named = [self.track] if self.kind == "all" else list(self.pairs.values())
        bad = sorted(t for t in named if t >= n_tracks)
        if bad:
            raise MIMAFaceError(f"{what}: track {bad[0]} does not exist; the driver has {n_tracks} face track(s)"
                                + (f" (0..{n_tracks - 1})." if n_tracks else "."))


def auto_order(tracks: FaceTracks) -> list[int]:
    """Track ids left to right on the first frame where the most tracks are present together, then
    the other tracks by id."""
    if not len(tracks):
        return []
    present = np.stack([t.present(tracks.n_frames) for t in tracks.tracks])
    frame = int(np.argmax(present.sum(0)))
    together = [t for t in tracks.tracks if present[t.id, frame]]
    centre = {t.id: float(np.mean(t.held_boxes(tracks.n_frames)[frame, [0, 2]])) for t in together}
    order = sorted(centre, key=centre.get)
    return order + [t.id for t in tracks.tracks if t.id not in centre]


def assign_tracks(face_map: FaceMap, n_faces: int, tracks: FaceTracks, faces: list[int] | None = None) -> dict[int, int]:
    """{face: track} for the faces chosen (``faces``, None = all) that have a driver.

    Raises:
        MIMAFaceError: a face or track named that does not exist.
    """
    face_map.check_faces(n_faces)
    face_map.check_tracks(len(tracks))
    chosen = list(range(n_faces)) if faces is None else [f for f in faces if f < n_faces]
    if face_map.kind == "all":
        return {f: face_map.track for f in chosen}
    if face_map.kind == "explicit":
        return {f: face_map.pairs[f] for f in chosen if f in face_map.pairs}
    order = auto_order(tracks)
    return {f: order[f] for f in chosen if f < len(order)}


def driving_for_face(motion: MotionSequence, source: SourceFace) -> MotionSequence:
    """A track's motion for one source face: frames before the track's first detection take the
    photo's own pose (the source's coefficients and 256 crop), the rest are the track's."""
    present = np.flatnonzero(~motion.missing)
    first = int(present[0]) if len(present) else len(motion)
    if first == 0:
        return motion
    coeffs = motion.coeffs.clone()
    coeffs[:first] = source.coeffs.detach().float().cpu()
    m256, m256_inv = motion.m256.copy(), motion.m256_inv.copy()
    m256[:first], m256_inv[:first] = source.alignment.m256, source.alignment.m256_inv
    return MotionSequence(coeffs, motion.m512, m256, m256_inv, motion.scores, motion.missing, motion.frame_size,
                          motion.fps, dict(motion.info, photo_pose_frames=first), motion.m512_frame)


@dataclass
class GroupPlan:
    """What :func:`plan_faces` found and decided.

    Attributes:
        sources: every face of the photo, left to right (None for faces not chosen).
        face_boxes: (F, 4) their detector boxes.
        tracks: the driver's face tracks (None when the faces are driven otherwise, e.g. audio).
        motions: per track, its motion (None for a track never found on its own crop).
        assignment: {face: track} of the driven faces.
        drivers: {face: the motion that drives it} (``driving_for_face`` applied).
    """

    sources: list
    face_boxes: np.ndarray
    tracks: FaceTracks | None
    motions: list
    assignment: dict[int, int]
    drivers: dict[int, MotionSequence]

    def describe(self) -> str:
        """A few lines for a person: faces found, tracks, who drives whom, missing frames."""
        lines = [f"source: {len(self.face_boxes)} face(s), left to right: " + ", ".join(
            f"{k} at x≈{(b[0] + b[2]) / 2:.0f}" for k, b in enumerate(self.face_boxes))]
        if self.tracks is not None:
            lines.append(f"driver: {len(self.tracks)} face track(s) over {self.tracks.n_frames} frame(s)")
            lines += ["  " + line for line in self.tracks.summary().splitlines()]
        for f in range(len(self.face_boxes)):
            if f in self.assignment:
                lines.append(f"face {f} <- track {self.assignment[f]}")
            else:
                lines.append(f"face {f}: no driver, stays as in the photo")
        return "\n".join(lines)


def plan_faces(source_image, driving_frames, detector: FaceDetector, d3dfr: torch.nn.Module,
               identity_encoder: torch.nn.Module, *, faces: list[int] | None = None,
               face_map: FaceMap = FaceMap(), tracking: TrackingOptions = TrackingOptions(),
               box_mode: str = "first_frame", fps: float | None = None,
               progress: Callable[[int, "int | None"], None] | None = None) -> GroupPlan:
    """Find the faces, the tracks and who drives whom.

    Args:
        source_image: the group photo.
        driving_frames: a sequence of frames or a function returning a fresh iterator (read twice).
        faces: source faces to animate (left-to-right indices), None = all.
        face_map: :class:`FaceMap`.
        tracking: :class:`TrackingOptions` (identity term weight, gap length...).
        box_mode: crops of each track (``motion.tracks.extract_track_motions``).
        progress: ``progress(done, total)`` per frame, over both passes (total = 2 × frames).

    Raises:
        FaceNotFoundError: no face in the source. MIMAFaceError: a face or track named that does
        not exist, or no face in the driver.
    """
    from .motion.sources import source_face_boxes

    photo = to_rgb_uint8(source_image, "source image")
    boxes = source_face_boxes(photo, detector)
    face_map.check_faces(len(boxes))
    if faces is not None and any(f >= len(boxes) for f in faces):
        bad = next(f for f in faces if f >= len(boxes))
        raise MIMAFaceError(f"--faces: face {bad} does not exist; the source has {len(boxes)} face(s) "
                            "(0 = the leftmost).")
    sources = encode_source_faces(photo, detector, d3dfr, identity_encoder, faces, boxes=boxes)
    fresh = driving_frames if callable(driving_frames) else (lambda: driving_frames)
    first = fresh()
    n = len(first) if hasattr(first, "__len__") else None
    total = None if n is None else 2 * n
    step = (lambda offset: (lambda done, _: progress(offset + done, total))) if progress is not None else \
        (lambda offset: None)
    tracks = track_faces(first, detector, identity_encoder, tracking, progress=step(0))
    if not len(tracks):
        raise MIMAFaceError(f"driving video: no face found in any of its {tracks.n_frames} frames.")
    motions = extract_track_motions(fresh(), tracks, detector, d3dfr, box_mode=box_mode, fps=fps,
                                    progress=step(tracks.n_frames))
    assignment = {f: t for f, t in assign_tracks(face_map, len(sources), tracks, faces).items()
                  if motions[t] is not None}
    drivers = {f: driving_for_face(motions[t], sources[f]) for f, t in assignment.items()}
    return GroupPlan(sources, boxes, tracks, motions, assignment, drivers)


@dataclass
class GroupFrames:
    """One piece of the output: ``frames`` (k, H, W, 3) float32 in [0, 1] composited; ``crops``
    {face: (k, 512, 512, 3)} each face's generated crops."""

    frames: torch.Tensor
    crops: dict[int, torch.Tensor]


def iter_animate_faces(model, sources: list, drivers: dict[int, MotionSequence], photo, options=None, *,
                       base_frames=None, feather: int = 24, fps: float | None = None,
                       on_step: Callable[[int, int], None] | None = None,
                       cancel: Callable[[], bool] | None = None, stats=None) -> Iterator[GroupFrames]:
    """Animate each driven face with the single-face pipeline and composite them, frame by frame.

    Args:
        model: from ``load_mimaface`` with a VAE.
        sources: the photo's faces (``GroupPlan.sources``). drivers: {face: motion}, all the same length.
        photo: the group photo (the base of every output frame unless ``base_frames``).
        options: ``pipeline.AnimateOptions`` (the same for every face, seed included).
        base_frames: None: paste into the photo, at each face's place in the photo; an iterator of
            driving frames: paste each face into them at its track's place (``--paste-back``).
        feather: soft edge of each face's mask, in crop pixels.
        on_step: ``on_step(done, total)`` over every face's denoising steps.
        cancel: returns True to stop (checked as in ``iter_animate``).
        stats: a ``sampling.cost.SamplingStats`` that every face's sampling adds to (its output
            frames are the animated face frames, one per face per driving frame).

    Yields:
        :class:`GroupFrames`, in order, one frame per driving frame in all.

    Raises:
        ValueError: no driven face, or drivers of different lengths.
    """
    from .pipeline import AnimateOptions, iter_animate

    options = options or AnimateOptions()
    if not drivers:
        raise ValueError("no face has a driver: check --faces and --face-map.")
    lengths = {len(m) for m in drivers.values()}
    if len(lengths) != 1:
        raise ValueError(f"the faces' drivers have different lengths {sorted(lengths)}.")
    order = sorted(drivers)
    stepper = face_steps(order, on_step)
    gens = {f: iter_animate(model, sources[f], drivers[f], options, fps=fps, on_step=stepper(f), cancel=cancel,
                            stats=stats)
            for f in order}
    photo_rgb = torch.from_numpy(to_rgb_uint8(photo, "source image")).float()[None] / 255
    photo_mats = {f: sources[f].motion().frame_to_crop() for f in order}
    track_mats = {f: drivers[f].frame_to_crop() for f in order}
    for done, k, crops in aligned_chunks(gens, lengths.pop()):
        if base_frames is None:
            base = photo_rgb
            mats = [np.repeat(photo_mats[f], k, 0) for f in order]
        else:
            base = torch.from_numpy(np.stack([to_rgb_uint8(next(base_frames), "frame") for _ in range(k)])).float() / 255
            mats = [track_mats[f][done:done + k] for f in order]
        frames, _ = paste_faces(base, [crops[f] for f in order], mats, feather)
        yield GroupFrames(frames, crops)


def face_steps(faces, on_step: Callable[[int, int], None] | None) -> Callable[[int], Callable[[int, int], None]]:
    """One progress over several faces' denoising: ``face_steps(faces, on_step)(f)`` is face f's
    ``on_step(done, total)``; every call reports ``on_step`` the steps done by all faces out of
    one face's total (the first known) times the number of faces."""
    faces = list(faces)
    steps = {f: (0, 0) for f in faces}

    def stepper(f):
        def step(done, total):
            steps[f] = (done, total)
            if on_step is not None:
                known = [t for _, t in steps.values() if t]
                per_face = known[0] if known else total
                on_step(sum(d for d, _ in steps.values()), per_face * len(faces))
        return step

    return stepper


def aligned_chunks(gens: dict, n: int) -> Iterator[tuple[int, int, dict]]:
    """Several faces' generated chunks in lock-step: ``gens`` maps each face to its
    ``iter_animate`` generator (chunks of (k_i, 512, 512, 3) float frames, clip by clip; their
    clip boundaries may differ); yields (first frame index, k, {face: (k, 512, 512, 3)}) for the
    next k frames every face has, until ``n`` frames are out. Holds at most one clip per face."""
    pending = {f: [] for f in gens}
    done = 0
    while done < n:
        for f, gen in gens.items():
            if not sum(len(c) for c in pending[f]):
                pending[f].append(next(gen))
        k = min(sum(len(c) for c in pending[f]) for f in gens)
        crops = {}
        for f in gens:
            joined = torch.cat(pending[f])
            crops[f], rest = joined[:k], joined[k:]
            pending[f] = [rest] if len(rest) else []
        yield done, k, crops
        done += k
