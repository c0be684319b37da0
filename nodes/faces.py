"""Several faces through one chain, with ComfyUI's list execution: Source Faces outputs one source
motion and crop per face of a group photo (OUTPUT_IS_LIST), Face Tracks Motion one driving motion
per source face (tracked in the driving video, assigned by the face map), the per-face nodes in
between (Render Coeff Image, MIA Appearance Encode, ICA Clip Sampler, VAE Decode) run once per
face on their own, and Paste Back Faces (INPUT_IS_LIST) takes every face's frames and composites
them into one IMAGE batch. The logic is mimaface_core.group's."""

from __future__ import annotations

import logging

import numpy as np
import torch

from mimaface_core.face.paste_faces import paste_faces
from mimaface_core.face.tracks import TrackingOptions, track_faces
from mimaface_core.group import FaceMap, assign_tracks, driving_for_face, parse_faces
from mimaface_core.motion.sequence import MotionSequence
from mimaface_core.motion.sources import encode_source_faces, source_face_boxes
from mimaface_core.motion.tracks import TRACK_BOX_MODES, extract_track_motions

from . import _comfy
from .images import frames_of, to_image
from .types import CATEGORY, MODEL, MOTION

log = logging.getLogger(__name__)
PASTE_INTO = ("source_photo", "driving_frames")


def _one(value):
    """A widget's value under INPUT_IS_LIST (a list of one)."""
    return value[0] if isinstance(value, list) else value


class SourceFaces:
    """Every face of a group photo, left to right: one source motion and one 512 crop per face."""

    CATEGORY = CATEGORY
    RETURN_TYPES = (MOTION, "IMAGE")
    RETURN_NAMES = ("source_motion", "source_crop")
    OUTPUT_IS_LIST = (True, True)
    OUTPUT_TOOLTIPS = ("One source motion per face (a list: the nodes after it run once per face).",
                       "One aligned 512x512 crop per face, in the same order.")
    FUNCTION = "faces"
    DESCRIPTION = ("Finds every face of the photo, orders them left to right and aligns each the released way "
                   "(its own box crop, 5 points, D3DFR). The outputs are lists: Render Coeff Image, MIA Appearance "
                   "Encode and ICA Clip Sampler then run once per face, and Paste Back Faces puts them together.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": (MODEL, {"tooltip": "From Load MIMAFace Model."}),
            "image": ("IMAGE", {"tooltip": "The group photo (its first image)."}),
            "faces": ("STRING", {"default": "all", "tooltip": "Which faces to animate: all, or indices left to right "
                      "separated by commas (0 = the leftmost)."}),
        }}

    def faces(self, model, image, faces):
        photo = frames_of(image, "image")[0]
        chosen = parse_faces(faces, "faces")
        with model.use("face") as m:
            boxes = source_face_boxes(photo, m.detector, "image")
            if chosen is not None and chosen[-1] >= len(boxes):
                raise ValueError(f"faces: face {chosen[-1]} does not exist; the photo has {len(boxes)} face(s).")
            found = encode_source_faces(photo, m.detector, m.d3dfr, m.identity_encoder, chosen, "image", boxes)
            name = m.detector.name
        motions, crops = [], []
        for k, s in enumerate(found):
            if s is None:
                continue
            motion = s.motion(name)
            motion.info.update(face=k, source_faces=len(found))
            motions.append(motion)
            crops.append(to_image([s.alignment.crop512]))
        log.info("[MIMAFace] Source Faces: %d face(s) found, animating %s.", len(found),
                 ", ".join(str(m.info["face"]) for m in motions))
        return (motions, crops)


class FaceTracksMotion:
    """Tracks every face of the driving frames and gives each source face the motion of its track."""

    CATEGORY = CATEGORY
    INPUT_IS_LIST = True
    RETURN_TYPES = (MOTION, "STRING")
    RETURN_NAMES = ("driving_motion", "report")
    OUTPUT_IS_LIST = (True, False)
    OUTPUT_TOOLTIPS = ("One driving motion per source face (same order as source_motion); a face without a driving "
                       "track gets its photo's pose on every frame and is left as in the photo by Paste Back Faces.",
                       "The faces, the tracks (with the frames each is missing) and who drives whom.")
    FUNCTION = "track"
    DESCRIPTION = ("Detects every face on every frame, links them into tracks by box overlap, motion and "
                   "CurricularFace identity (Hungarian assignment), extracts each track's motion in its own crops "
                   "and assigns the tracks to the source faces.")

    @classmethod
    def INPUT_TYPES(cls):
        d = TrackingOptions()
        return {"required": {
            "model": (MODEL, {"tooltip": "From Load MIMAFace Model."}),
            "images": ("IMAGE", {"tooltip": "The driving video's frames."}),
            "source_motion": (MOTION, {"tooltip": "The source_motion list of Source Faces."}),
            "face_map": ("STRING", {"default": "auto", "tooltip": "auto: the tracks left to right (where they first "
                         "appear together) drive the faces left to right; FACE:TRACK pairs such as 0:1,1:0; or "
                         "all:TRACK (one track drives every face)."}),
            "crop_mode": (list(TRACK_BOX_MODES), {"default": "auto", "tooltip": "auto / first_frame: each track's "
                          "box of its first frame for every frame (the released recipe per face); tracked: a "
                          "smoothed box per frame."}),
            "track_gap": ("INT", {"default": d.max_gap, "min": 0, "max": 1000, "tooltip": "Frames a face may be "
                          "missing and keep its track by box overlap; after that only its identity brings it back."}),
            "identity_weight": ("FLOAT", {"default": d.identity_weight, "min": 0.0, "max": 1.0, "step": 0.05,
                                "tooltip": "Weight of the identity term (vs. box overlap) when linking faces."}),
        }}

    def track(self, model, images, source_motion, face_map, crop_mode, track_gap, identity_weight):
        model = _one(model)
        frames = frames_of(torch.cat(images) if len(images) > 1 else images[0], "images")
        fmap = FaceMap.parse(_one(face_map), "face_map")
        tracking = TrackingOptions(max_gap=int(_one(track_gap)), identity_weight=float(_one(identity_weight)))
        sources = list(source_motion)
        n_faces = max(int(m.info.get("source_faces", len(sources))) for m in sources)
        face_of = [int(m.info.get("face", k)) for k, m in enumerate(sources)]
        progress = _comfy.Progress(2 * len(frames))
        with model.use("face") as m:
            tracks = track_faces(frames, m.detector, m.identity_encoder, tracking,
                                 progress=lambda done, _: progress(done, 2 * len(frames)))
            if not len(tracks):
                raise ValueError(f"images: no face found in any of the {len(frames)} driving frames.")
            motions = extract_track_motions(frames, tracks, m.detector, m.d3dfr, box_mode=_one(crop_mode),
                                            progress=lambda done, _: progress(len(frames) + done, 2 * len(frames)))
        assignment = assign_tracks(fmap, n_faces, tracks, face_of)
        out, lines = [], [tracks.summary()]
        for face, src in zip(face_of, sources):
            t = assignment.get(face)
            if t is not None and motions[t] is not None:
                out.append(driving_for_face(motions[t], _AsSource(src)))
                lines.append(f"face {face} <- track {t}")
            else:
                out.append(_still(src, len(frames)))
                lines.append(f"face {face}: no driver, stays as in the photo")
        report = "\n".join(lines)
        log.info("[MIMAFace] Face Tracks Motion:\n%s", report)
        return (out, report)


class _AsSource:
    """What ``driving_for_face`` reads of a source face, from a source motion."""

    def __init__(self, motion: MotionSequence):
        self.coeffs = motion.coeffs[:1]

        class _Alignment:
            m256, m256_inv = motion.m256[0], motion.m256_inv[0]

        self.alignment = _Alignment()


def _still(source: MotionSequence, n: int) -> MotionSequence:
    """The photo's pose on every frame, flagged undriven (Paste Back Faces leaves the face as is)."""
    rep = lambda a: np.repeat(np.asarray(a[:1]), n, 0)  # noqa: E731
    return MotionSequence(source.coeffs[:1].repeat(n, 1), rep(source.m512), rep(source.m256), rep(source.m256_inv),
                          np.zeros(n, np.float32), np.ones(n, bool), source.frame_size, None,
                          {**source.info, "undriven": True}, source.m512_frame)


class PasteBackFaces:
    """Composites every face's generated frames into the photo (or the driving frames), larger faces on top."""

    CATEGORY = CATEGORY
    INPUT_IS_LIST = True
    RETURN_TYPES = ("IMAGE", "MASK")
    RETURN_NAMES = ("images", "mask")
    OUTPUT_TOOLTIPS = ("One frame per driving frame with every animated face pasted in, at the photo's (or the "
                       "driving frames') size.", "The union of the faces' feathered masks, per frame.")
    FUNCTION = "paste"
    DESCRIPTION = ("Takes the per-face lists (generated frames, source motions, driving motions) and pastes each "
                   "face back with a feathered mask, smaller faces first so larger ones end on top. Outside the "
                   "masks the output is the photo, unchanged. Faces without a driving track are left as in the photo.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "frames": ("IMAGE", {"tooltip": "The group photo (source_photo) or the driving frames (driving_frames)."}),
            "generated": ("IMAGE", {"tooltip": "The decoded animation of every face (the list from VAE Decode)."}),
            "source_motion": (MOTION, {"tooltip": "The source_motion list of Source Faces."}),
            "driving_motion": (MOTION, {"tooltip": "The driving_motion list of Face Tracks Motion."}),
            "paste_into": (list(PASTE_INTO), {"default": PASTE_INTO[0], "tooltip": "source_photo: each face at its "
                           "place in the photo. driving_frames: each face at its track's place in the driving "
                           "frames."}),
            "feather": ("INT", {"default": 24, "min": 0, "max": 256, "tooltip": "Width in crop pixels of the soft "
                        "edge of each face's mask (0 = hard edge)."}),
        }}

    def paste(self, frames, generated, source_motion, driving_motion, paste_into, feather):
        base = torch.cat(frames) if len(frames) > 1 else frames[0]
        into, feather = _one(paste_into), int(_one(feather))
        if not (len(generated) == len(source_motion) == len(driving_motion)):
            raise ValueError(f"Paste Back Faces needs one generated batch, source motion and driving motion per face; "
                             f"got {len(generated)}, {len(source_motion)} and {len(driving_motion)}.")
        keep = [i for i, d in enumerate(driving_motion) if not d.info.get("undriven")]
        n = len(generated[0])
        if any(len(g) != n for g in generated):
            raise ValueError(f"generated: every face needs the same number of frames, got {[len(g) for g in generated]}.")
        h, w = base.shape[1:3]
        mats = []
        for i in keep:
            motion = source_motion[i] if into == "source_photo" else driving_motion[i]
            if (w, h) != tuple(motion.frame_size):
                raise ValueError(f"frames are {w}x{h} but face {i}'s {'source' if into == 'source_photo' else 'driving'}"
                                 f" motion was made on {motion.frame_size[0]}x{motion.frame_size[1]} images.")
            m = motion.frame_to_crop()
            mats.append(np.repeat(m[:1], n, 0) if len(m) == 1 else m)
        if into == "driving_frames" and len(base) != n:
            raise ValueError(f"frames: {len(base)} driving frames for {n} generated frames.")
        progress = _comfy.Progress(n)
        out, masks = [], []
        for f in range(n):  # one frame at a time: progress and Cancel per frame
            frame = base[f:f + 1] if len(base) > 1 else base[:1]
            image, mask = paste_faces(frame, [generated[i][f:f + 1] for i in keep], [mats[j][f:f + 1] for j in
                                      range(len(keep))], feather)
            out.append(image)
            masks.append(mask)
            progress(f + 1, n)
        return (torch.cat(out), torch.cat(masks))
