"""Command line: ``python -m mimaface_core {animate,convert,download} ...``."""

from __future__ import annotations

import argparse
import logging
import sys

from .errors import MIMAFaceError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mimaface_core", description="MIMAFace core tools.")
    sub = parser.add_subparsers(dest="command", required=True)
    conv = sub.add_parser("convert", help="rewrite a released snapshot as safetensors (no pickles left)")
    conv.add_argument("src", help="released MIMAFace snapshot folder")
    conv.add_argument("dst", help="output folder (same layout, .safetensors instead of .pth)")
    down = sub.add_parser("download", help="download the released weights, sd-vae-ft-mse, the SD1.5 scheduler config "
                          "and SadTalker's audio weights")
    down.add_argument("dest", help="destination folder, e.g. ComfyUI/models/mimaface/MIMAFace")
    from .cli_animate import add_parser

    add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if args.command == "convert":
            from .weights.convert import convert_snapshot

            convert_snapshot(args.src, args.dst)
        elif args.command == "animate":
            from .cli_animate import run

            run(args)
        elif args.command == "download":
            from .weights.download import download_weights

            download_weights(args.dest)
    except (MIMAFaceError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
