"""One check per job, in one place: everything that can be refused before a model loads.

``animate``: the common checks (``cli.checks.check_animate_args``: ranges, the source photo,
keyframes, the driver, the output, the weights and VAE, the device), then the path's own: several
faces (``cli.faces.check_face_args``: option syntax and the source's faces, with the shipped face
detector) or speech (``cli.animate.check_audio_args``: motion options, the speech file, SadTalker's
weights, reference motions). ``evaluate``: ``cli.evaluate.check_evaluate_args``.
"""

from __future__ import annotations


def check_animate(args):
    """The checks of an ``animate`` job. Returns ``cli.checks.CheckedInputs`` (``faces`` /
    ``audio`` filled on those paths). Raises MIMAFaceError naming the flag."""
    from ..cli.animate import check_audio_args
    from ..cli.checks import check_animate_args
    from ..cli.faces import check_face_args, wants_faces
    from ..cli.footage import wants_footage

    checked = check_animate_args(args)
    if wants_footage(args):
        pass  # footage mode: its model-free checks ran in check_animate_args (cli.footage.check_footage_source)
    elif wants_faces(args):
        checked.faces = check_face_args(args, checked)
    elif args.audio is not None:
        checked.audio = check_audio_args(args)
    return checked


def check_evaluate(args):
    """The checks of an ``evaluate`` job: (generated clip, driving clip, source or None, device)."""
    from ..cli.evaluate import check_evaluate_args

    return check_evaluate_args(args)


CHECKS = {"animate": check_animate, "evaluate": check_evaluate}


def check_job(job):
    """Everything about ``job`` (a :class:`~mimaface_core.jobs.spec.Job`) that needs no model.

    Returns:
        what the kind's runner needs (stored by ``Job.check`` as ``job.checked``).

    Raises:
        MIMAFaceError: the first problem, naming the flag (``Job.check`` renames it for a manifest).
    """
    return CHECKS[job.kind](job.args)
