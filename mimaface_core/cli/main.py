"""The top-level parser and dispatcher of ``python -m mimaface_core {animate,evaluate,train,convert,download}``."""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from pathlib import Path

from ..errors import MIMAFaceError
from .help import DefaultsHelpFormatter


def build_parser(parser_class: type = argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The command line's parser; ``parser_class`` (an ``argparse.ArgumentParser`` subclass, used
    by the subcommands too) lets :mod:`mimaface_core.jobs` turn usage errors into exceptions."""
    from .help import EXAMPLES, ExamplesHelpFormatter

    parser = parser_class(prog="python -m mimaface_core", description="MIMAFace face animation: animate a "
                                     "portrait with a driving video, image or speech; evaluate, train, get the weights.",
                                     epilog=EXAMPLES, formatter_class=ExamplesHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    conv = sub.add_parser("convert", help="rewrite a released snapshot as safetensors (no pickles left)",
                          formatter_class=DefaultsHelpFormatter)
    conv.add_argument("--debug", action="store_true", help="show the Python traceback of an error")
    conv.add_argument("src", help="released MIMAFace snapshot folder")
    conv.add_argument("dst", help="output folder (same layout, .safetensors instead of .pth)")
    down = sub.add_parser("download", help="download the released weights, sd-vae-ft-mse, the SD1.5 scheduler config "
                          "and SadTalker's audio weights", formatter_class=DefaultsHelpFormatter)
    down.add_argument("--debug", action="store_true", help="show the Python traceback of an error")
    down.add_argument("dest", nargs="?", type=Path, default=None, help="destination folder (default: $MIMAFACE_WEIGHTS "
                      "when set, else ComfyUI/models/mimaface/MIMAFace when this pack is in a ComfyUI's custom_nodes, "
                      "else ~/.cache/mimaface/MIMAFace: where animate, evaluate and train look without --weights)")
    from .animate import add_parser
    from .batch import add_parser as add_batch_parser
    from .evaluate import add_parser as add_evaluate_parser
    from .train import add_parser as add_train_parser

    add_parser(sub)
    add_evaluate_parser(sub)
    add_train_parser(sub)
    add_batch_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run a command; every failure becomes one line on stderr and a non-zero exit status (the
    traceback only with ``--debug``); Ctrl-C exits with one line and status 130."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "batch":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.passthrough = extra  # batch: animate / evaluate options given as every job's defaults
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    debug = getattr(args, "debug", False)
    from tqdm.contrib.logging import logging_redirect_tqdm

    try:
        with logging_redirect_tqdm():  # log lines above the progress bars, never on a bar's line
            status = _dispatch(args)
    except KeyboardInterrupt:
        if args.command == "batch":
            print("interrupted: the finished jobs are recorded in batch_state.jsonl; run the same command again "
                  "to go on.", file=sys.stderr)
            return 130
        print("interrupted: nothing was written under the output name.", file=sys.stderr)
        return 130
    except (MIMAFaceError, ValueError) as exc:
        if debug:
            traceback.print_exc()
        print(f"error: {_message(exc)}", file=sys.stderr)
        return 1
    except Exception as exc:  # anything else: still one line, with a hint to get the details
        if debug:
            traceback.print_exc()
        print(f"error: {type(exc).__name__}: {_one_line(exc)} (run again with --debug for the details)",
              file=sys.stderr)
        return 1
    return status if isinstance(status, int) and args.command == "batch" else 0


def _dispatch(args):
    """Run the parsed command (``batch`` returns its exit status)."""
    if args.command == "convert":
        from ..weights.convert import convert_snapshot

        convert_snapshot(args.src, args.dst)
    elif args.command == "animate":
        from .animate import run

        run(args)
    elif args.command == "evaluate":
        from .evaluate import run as run_evaluate

        run_evaluate(args)
    elif args.command == "batch":
        from .batch import run as run_batch

        return run_batch(args)
    elif args.command == "train":
        from .train import run as run_train

        run_train(args)
    elif args.command == "download":
        from ..weights.download import download_weights
        from ..weights.location import default_download_folder

        download_weights(args.dest if args.dest is not None else default_download_folder())


def _message(exc: BaseException) -> str:
    """One line; an error that carries a list for the user (``details``, as
    :class:`~mimaface_core.weights.download.DownloadError` does with what to download by hand)
    keeps its first line short and the list below it."""
    details = getattr(exc, "details", None)
    if details:
        return " ".join(str(getattr(exc, "summary", "")).split()) + "\n" + details.rstrip()
    return _one_line(exc)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__

