"""The command line's progress output: one tqdm bar per phase."""

from __future__ import annotations


class ProgressBars:
    """One tqdm bar per phase (motion extraction, audio networks, sampling), each closed when its
    phase ends (so its time is the phase's) and the rest on exit. Log lines go through tqdm while
    the command runs (``cli.main``), so they never share a line with a bar."""

    def __init__(self):
        self.bars = {}

    def _bar(self, key, total, desc, unit):
        from tqdm import tqdm

        if key not in self.bars:
            self.bars[key] = tqdm(total=total, desc=desc, unit=unit)
        return self.bars[key]

    def _advance(self, key, desc, unit, done, total):
        bar = self._bar(key, total, desc, unit)
        if done <= bar.n:  # the phase started again (auto crop falling back to tracked boxes)
            bar.reset(total)
        elif total is not None and bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    def frame(self, done, total):
        self._advance("motion", "motion", "frame", done, total)

    def step(self, done, total):
        self._advance("sample", "sampling", "step", done, total)

    def audio(self, done, total):
        self._advance("audio", "audio to motion", "step", done, total)

    def close(self, key):
        bar = self.bars.pop(key, None)
        if bar is not None:
            bar.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for key in list(self.bars):
            self.close(key)
