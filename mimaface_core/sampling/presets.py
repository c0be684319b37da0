"""Speed presets of the sampler: named sets of sampler options (docs/SAMPLING.md §10, README "Speed
presets"). A preset only chooses values of ``SamplingOptions`` fields; a field the caller gives
explicitly overrides its preset's value. ``exact`` is the release (the default).

Imports no torch: the CLI's ``--help`` reads this table.
"""

from __future__ import annotations

#: Fields a preset sets, with the release's values (the ``exact`` preset).
EXACT = dict(steps=25, scheduler="euler", guidance_interval=None, cache_interval=1, cache_depth=1)

#: preset → values of the preset fields (missing ones: :data:`EXACT`'s). Targets in UNet passes
#: per output frame on a long video (exact 66.7): balanced ≤ 33.3, fast ≤ 13.3, draft ≤ 6.67.
PRESETS: dict[str, dict] = {
    "exact": {},
    "balanced": dict(steps=20, scheduler="dpmpp_2m_karras", guidance_interval=(0.1, 1.0), cache_interval=2),
    "fast": dict(steps=8, scheduler="dpmpp_2m_karras", guidance_interval=(0.2, 1.0), cache_interval=2),
    "draft": dict(steps=6, scheduler="dpmpp_2m_karras", guidance_interval=(0.6, 1.0), cache_interval=3),
}

#: Preset names; the first is the default.
PRESET_NAMES: tuple[str, ...] = tuple(PRESETS)


def preset_values(name: str) -> dict:
    """Every preset field's value under preset ``name``.

    Raises:
        ValueError: an unknown name (the message lists the presets).
    """
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}: choose one of {', '.join(PRESET_NAMES)}.")
    return {**EXACT, **PRESETS[name]}


def describe(name: str) -> str:
    """What preset ``name`` turns on, in one line (``--help``, the node's tooltip, the README)."""
    v = preset_values(name)
    if name == "exact":
        return "exact: the release (25 Euler steps, CFG on every step, no feature cache)"
    parts = [f"{v['steps']} {v['scheduler']} steps"]
    if v["guidance_interval"] is not None:
        low, high = v["guidance_interval"]
        parts.append(f"CFG only in the schedule interval {low:g}-{high:g}")
    if v["cache_interval"] > 1:
        parts.append(f"DeepCache every {v['cache_interval']} steps (depth {v['cache_depth']})")
    return f"{name}: " + ", ".join(parts)
