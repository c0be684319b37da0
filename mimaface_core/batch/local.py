"""The batch in this process: one :class:`~mimaface_core.jobs.ModelCache` across the jobs, one
progress bar over the jobs (the current job's phases below it)."""

from __future__ import annotations


def run_local(todo, finish, models=None) -> None:
    """Run each entry's checked job in order; ``finish(entry, outcome)`` after each (the outcome of
    :func:`~mimaface_core.batch.worker.run_one`). A failing job is recorded and the batch goes
    on; Ctrl-C stops during the current job (its output is not written: outputs are atomic)."""
    from tqdm import tqdm

    from ..jobs import ModelCache
    from .worker import run_one

    models = ModelCache() if models is None else models
    with tqdm(total=len(todo), desc="jobs", unit="job", position=0) as bar:
        for entry in todo:
            bar.set_postfix_str(entry.id)
            finish(entry, run_one(entry.job, models))
            bar.update(1)
