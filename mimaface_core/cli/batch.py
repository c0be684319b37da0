"""``python -m mimaface_core batch JOBS.jsonl --out-dir D``: a manifest of animate / evaluate jobs,
checked first, run resumably with the networks loaded once per worker (:mod:`mimaface_core.batch`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import MIMAFaceError
from .help import DefaultsHelpFormatter

#: batch options that are every job's defaults (given to each job whose command has them).
DEFAULT_OPTIONS = ("--weights", "--device", "--dtype", "--audio-weights", "--vae")


def add_parser(sub) -> None:
    """Register the ``batch`` subcommand."""
    p = sub.add_parser("batch", help="run a manifest of animate / evaluate jobs (JSON lines or CSV), resumably, "
                       "locally or on a Ray cluster", formatter_class=DefaultsHelpFormatter,
                       description="Any other animate or evaluate option given here (e.g. --steps 4) is a default "
                       "of every job whose command has it; a job's own line wins.")
    p.add_argument("manifest", type=Path, help="one job per line: {\"id\": ..., \"kind\": \"animate\"|\"evaluate\", "
                   "\"source\": ..., \"driving\"|\"audio\"|\"keyframes\": ..., \"out\": ..., ...} (the command's "
                   "options without --); a .csv with the same columns also works; paths relative to the manifest")
    p.add_argument("--out-dir", required=True, type=Path, help="outputs (relative 'out' values, default <id>.mp4 / "
                   "<id>.json), batch_state.jsonl and batch_report.csv")
    p.add_argument("--check", action="store_true", help="only check every line (files, options, duplicates)")
    p.add_argument("--strict", action="store_true", help="run nothing when a line is bad")
    p.add_argument("--hash", action="store_true", help="fingerprint inputs by sha256 (default: path, size, mtime)")
    p.add_argument("--retry-failed", action="store_true", help="rerun jobs that failed before with unchanged inputs")
    p.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS", help="run on Ray (pip install "
                   "'comfyui-mimaface[cluster]'): local (a Ray instance here), auto or ADDRESS (a running cluster)")
    p.add_argument("--workers", type=int, default=None, help="Ray actors (default one per GPU), or without --ray "
                   "local processes (default one per visible GPU; 1 = this process)")
    p.add_argument("--max-retries", type=int, default=2, help="times a job whose Ray worker died is sent to another")
    p.add_argument("--weights", type=Path, default=None, help="every job's MIMAFace folder (default: as animate)")
    p.add_argument("--audio-weights", type=Path, default=None, help="every audio job's SadTalker weights")
    p.add_argument("--vae", type=Path, default=None, help="every animate job's VAE")
    p.add_argument("--device", default=None, help="every job's device")
    p.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), default=None, help="every animate job's dtype")
    p.add_argument("--debug", action="store_true", help="show the Python traceback of an error")


def job_defaults(args, extra: list[str]) -> dict[str, list[str]]:
    """{kind: argv} of the batch's own job options and of ``extra`` (animate / evaluate options
    given to ``batch``), each given to the kinds whose command has it.

    Raises:
        MIMAFaceError: an option no job command has, or one missing its value.
    """
    from ..jobs.spec import KINDS, option_action

    pairs: list[tuple[str, str | None]] = []
    for flag in DEFAULT_OPTIONS:
        value = getattr(args, flag[2:].replace("-", "_"))
        if value is not None:
            pairs.append((flag, str(Path(value).resolve()) if isinstance(value, Path) else str(value)))
    k = 0
    while k < len(extra):
        token = extra[k]
        flag, _, inline = token.partition("=")
        actions = [option_action(kind, flag) for kind in KINDS] if flag.startswith("--") else [None]
        action = next((a for a in actions if a is not None), None)
        if action is None or flag in ("--help", "--debug", "--out", "--json"):
            raise MIMAFaceError(f"batch: {token} is neither a batch option nor an option of animate or evaluate.")
        if action.nargs == 0:
            pairs.append((flag, None))
            k += 1
            continue
        if inline:
            value, k = inline, k + 1
        elif k + 1 < len(extra):
            value, k = extra[k + 1], k + 2
        else:
            raise MIMAFaceError(f"batch: {flag} needs a value.")
        if action.type is Path:
            value = str(Path(value).resolve())
        pairs.append((flag, value))
    return {kind: [t for flag, value in pairs if option_action(kind, flag) is not None
                   for t in ([flag] if value is None else [flag, value])] for kind in KINDS}


def run(args: argparse.Namespace) -> int:
    """Run the batch; exit status 0 when every job is done or skipped, 1 when one failed."""
    from ..batch import run_batch

    if args.workers is not None and args.workers < 1:
        raise MIMAFaceError(f"--workers {args.workers}: must be at least 1.")
    if args.max_retries < 0:
        raise MIMAFaceError(f"--max-retries {args.max_retries}: must be at least 0.")
    defaults = job_defaults(args, list(getattr(args, "passthrough", [])))
    summary = run_batch(args.manifest, args.out_dir, defaults=defaults, check_only=args.check, strict=args.strict,
                        hash_files=args.hash, retry_failed=args.retry_failed, ray=args.ray, workers=args.workers,
                        max_retries=args.max_retries)
    return 1 if summary.failed else 0
