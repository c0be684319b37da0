"""Group media composed from the pack's own real media with PIL and PyAV: a group photo (two real
portraits side by side) and a two-person driving clip (two real clips side by side), optionally
with one face blanked for a few frames. ``python tests/group_media.py`` rewrites the two files the
group workflow loads from example_media/."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "example_media"
MEDIA = ROOT / "tests" / "fixtures" / "media"
#: Left and right portraits of the group photo, and the left and right driving clips.
PORTRAITS = (EXAMPLES / "portrait_eileen_collins.jpg", EXAMPLES / "driving_expression.jpg")
CLIPS = (MEDIA / "intel_headpose_female_480x270_1.8s.mp4", MEDIA / "intel_headpose_male_480x270_4.8s.mp4")
GROUP_PHOTO, TWO_PEOPLE = "group_photo.jpg", "driving_two_people.mp4"


def group_photo(height: int = 400) -> np.ndarray:
    """(height, W, 3) uint8: the portraits scaled to ``height`` and put side by side."""
    parts = []
    for p in PORTRAITS:
        im = Image.open(p).convert("RGB")
        parts.append(np.asarray(im.resize((round(im.width * height / im.height), height), Image.LANCZOS)))
    return np.concatenate(parts, 1)


def two_people_frames(n: int = 16, blank: tuple[int, int] | None = None, side: int = 0) -> list[np.ndarray]:
    """``n`` (270, 960, 3) uint8 frames: the two clips side by side; frames ``blank[0] <= i <
    blank[1]`` have the ``side`` half (0 = left) painted flat grey (the face gone)."""
    from mimaface_core.media.video_in import iter_video_frames

    left, right = (list(iter_video_frames(c, limit=n)) for c in CLIPS)
    frames = []
    for i in range(n):
        f = np.concatenate([left[i], right[i]], 1).copy()
        if blank is not None and blank[0] <= i < blank[1]:
            w = f.shape[1] // 2
            f[:, side * w:(side + 1) * w] = 128
        frames.append(f)
    return frames


def write_video(path: Path, frames: list[np.ndarray], fps: float = 12.5) -> Path:
    """H.264 at crf 18 through the pack's own writer (``media.video_out.write_video``)."""
    from mimaface_core.media.video_out import write_video as write

    write(path, frames, fps)
    return path


if __name__ == "__main__":
    Image.fromarray(group_photo()).save(EXAMPLES / GROUP_PHOTO, quality=92)
    write_video(EXAMPLES / TWO_PEOPLE, two_people_frames(23))
    print("wrote", EXAMPLES / GROUP_PHOTO, EXAMPLES / TWO_PEOPLE)
