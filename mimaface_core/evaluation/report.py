"""The evaluation's result: per-frame values and summaries of each metric, printed as a table,
written as JSON (top-level keys = metric names, each with ``mean`` and ``per_frame``) and drawn as
per-frame curves (a drift or a seam between clips shows as a step).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: (JSON name, table label, better, unit, what it is), in Table 1's order, then ours.
METRICS = (
    ("psnr", "PSNR", "higher", "dB", "same-identity, 512 crops, capped at 100 dB"),
    ("ssim", "SSIM", "higher", "", "same-identity, 512 crops"),
    ("lpips", "LPIPS", "lower", "", "same-identity, AlexNet"),
    ("exp", "Exp", "lower", "", "L2 of the 64 D3DFR expression coefficients"),
    ("pose", "Pose", "lower", "", "L2 of the 3 angles (rad) + 3 translations"),
    ("gaze", "Gaze", "lower", "", "L2 of the 4 D3DFR eye outputs"),
    ("csim", "CSIM", "higher", "", "cosine of CurricularFace embeddings, generated vs source"),
    ("lmd", "LMD", "lower", "px", "mean distance of the 5 MTCNN points, 512-crop pixels"),
    ("fid", "FID", "lower", "", "generated vs driving frames, Inception-v3 2048-d"),
    ("frame_difference", "FrameDiff", "", "", "mean |G[t] - G[t-1]| of the generated crops, [0, 1]"),
)
LABELS = {name: label for name, label, *_ in METRICS}


@dataclass
class MetricResult:
    """One metric.

    Attributes:
        name: the JSON name (see :data:`METRICS`).
        per_frame: one value per frame (None where not measurable: no face on either crop, the
            first frame of a difference); empty for set-level metrics (FID).
        value: the set-level value (FID), else None.
        skipped: why the metric was not computed (a sentence naming what is missing), else None.
        seam: the seam score (:mod:`.seams`), when clip length and overlap were given.
    """

    name: str
    per_frame: list = field(default_factory=list)
    value: float | None = None
    skipped: str | None = None
    seam: float | None = None

    def finite(self) -> np.ndarray:
        """The measured per-frame values (float64)."""
        x = np.array([v for v in self.per_frame if v is not None], np.float64)
        return x[np.isfinite(x)]

    @property
    def mean(self) -> float | None:
        if self.value is not None:
            return self.value
        x = self.finite()
        return float(x.mean()) if len(x) else None

    @property
    def std(self) -> float | None:
        x = self.finite()
        return float(x.std()) if len(x) else None

    @property
    def frames(self) -> int:
        return len(self.finite())

    def to_json(self) -> dict:
        better = next((b for n, _, b, *_ in METRICS if n == self.name), "")
        return {"mean": _clean(self.mean), "std": _clean(self.std) if self.value is None else None,
                "frames": self.frames, "per_frame": [_clean(v) for v in self.per_frame],
                "seam": _clean(self.seam), "skipped": self.skipped, "better": better}


def _clean(v):
    return None if v is None or (isinstance(v, float) and not math.isfinite(v)) else float(v)


@dataclass
class EvaluationResult:
    """Every metric of one generated clip, plus what was compared.

    Attributes:
        metrics: name → :class:`MetricResult`, in :data:`METRICS` order.
        num_frames: frames compared. seams: seam frame indices (empty without clip length).
        same_identity: whether the same-identity metrics (PSNR, SSIM, LPIPS) were asked for.
        missing_generated / missing_driving: frames whose crop had no face (driving crops are
            looked at only where the generated crop has a face).
    """

    metrics: dict[str, MetricResult]
    num_frames: int
    seams: list[int] = field(default_factory=list)
    same_identity: bool = False
    missing_generated: list[int] = field(default_factory=list)
    missing_driving: list[int] = field(default_factory=list)

    def __getitem__(self, name: str) -> MetricResult:
        return self.metrics[name]

    def to_json(self) -> dict:
        """{metric name: {mean, std, frames, per_frame, seam, skipped, better}} (JSON-ready;
        non-finite numbers become null)."""
        return {name: m.to_json() for name, m in self.metrics.items()}

    def write_json(self, path: str | Path) -> None:
        """Write :meth:`to_json` (atomically)."""
        from ..media.outputs import atomic_output

        with atomic_output(path) as tmp:
            Path(tmp).write_text(json.dumps(self.to_json(), indent=1))

    def table(self) -> str:
        """A text table: metric, better, mean, std, frames measured, seam score, or the skip reason."""
        rows = [f"{'metric':<10} {'better':<6} {'mean':>10} {'std':>10} {'frames':>6} {'seam':>6}"]
        for name, m in self.metrics.items():
            label = LABELS.get(name, name)
            better = {"higher": "↑", "lower": "↓"}.get(next((b for n, _, b, *_ in METRICS if n == name), ""), "")
            if m.skipped:
                rows.append(f"{label:<10} {better:<6} {m.skipped}")
                continue
            fmt = lambda v: "-" if v is None else f"{v:10.4f}"  # noqa: E731
            seam = "-" if m.seam is None else f"{m.seam:6.2f}"
            rows.append(f"{label:<10} {better:<6} {fmt(m.mean):>10} {fmt(m.std):>10} {m.frames:>6} {seam:>6}")
        notes = [f"{self.num_frames} frames compared"]
        if self.missing_generated:
            notes.append(f"no face on generated frames {_short(self.missing_generated)}")
        if self.missing_driving:
            notes.append(f"no face on driving frames {_short(self.missing_driving)}")
        if self.seams:
            notes.append(f"seams at frames {_short(self.seams)}")
        return "\n".join(rows + ["; ".join(notes)])

    def plot(self, width: int = 1000, height: int = 800) -> np.ndarray:
        """Per-frame curves of the Exp, Pose and Gaze errors and CSIM (dashed lines at the seams)
        as a (height, width, 3) uint8 RGB image (matplotlib, Agg)."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        dpi = 100
        fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
        FigureCanvasAgg(fig)
        names = ("exp", "pose", "gaze", "csim")
        axes = fig.subplots(len(names), 1, sharex=True)
        frames = np.arange(self.num_frames)
        for ax, name in zip(axes, names):
            m = self.metrics.get(name)
            ax.set_ylabel(LABELS[name])
            ax.grid(alpha=0.3)
            if m is None or m.skipped or not m.per_frame:
                ax.text(0.5, 0.5, (m.skipped if m is not None and m.skipped else "not measured"), ha="center",
                        va="center", transform=ax.transAxes, fontsize=8, wrap=True)
                continue
            y = np.array([np.nan if v is None else v for v in m.per_frame], np.float64)
            ax.plot(frames[:len(y)], y, lw=1.2)
            for t in self.seams:
                ax.axvline(t - 0.5, color="tab:red", ls="--", lw=0.8)
        from matplotlib.ticker import MaxNLocator

        axes[-1].xaxis.set_major_locator(MaxNLocator(integer=True))
        axes[-1].set_xlabel("frame")
        fig.suptitle("per-frame errors (dashed: clip seams)" if self.seams else "per-frame errors")
        fig.tight_layout()
        fig.canvas.draw()
        rgba = np.asarray(fig.canvas.buffer_rgba())
        return np.ascontiguousarray(rgba[..., :3])

    def write_plot(self, path: str | Path, width: int = 1000, height: int = 800) -> None:
        """Write :meth:`plot` as a PNG (atomically)."""
        from PIL import Image

        from ..media.outputs import atomic_output

        with atomic_output(path) as tmp:
            Image.fromarray(self.plot(width, height)).save(tmp, format="PNG")


def _short(indices: list[int], most: int = 12) -> str:
    shown = ", ".join(str(i) for i in indices[:most])
    return shown + (f", … ({len(indices)} in all)" if len(indices) > most else "")
