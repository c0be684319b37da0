"""The job description: a kind (``animate`` or ``evaluate``) and its command's parsed options.

The command's argparse parser is the single source of its options: a job built from argv, from a
manifest mapping (``{"source": "a.png", "driving": "b.mp4", "steps": 4}`` becomes
``["--source", ..., "--steps", "4"]``) or from Python goes through that same parser, so an option
added to ``animate`` is a manifest key at once. Errors name the field as its origin names it: the
flag (``--steps``) for argv, the key (``steps``) for a manifest line.
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from ..errors import MIMAFaceError

KINDS = ("animate", "evaluate")
#: per kind, the options whose value is a file the job writes (relative to the batch's --out-dir).
OUTPUT_OPTIONS = {"animate": ("--out", "--save-motion"), "evaluate": ("--json", "--plot")}
#: per kind, the option a manifest's ``out`` stands for, and the default output suffix.
OUT_OPTION = {"animate": "--out", "evaluate": "--json"}
#: options that name files or folders although their parser leaves them strings.
PATH_OPTIONS = {"--mediapipe-models"}
#: keys of a manifest line that are not options.
META_KEYS = ("id", "kind")
#: options a manifest may not set (they concern the terminal, not the job).
NOT_IN_MANIFEST = {"--debug", "--help"}
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}
_FLAG = re.compile(r"(?<![\w-])--([a-z][a-z0-9-]*)")


class UsageError(Exception):
    """argparse's usage error, raised instead of exiting."""


class _RaisingParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` that raises :class:`UsageError` instead of printing and exiting."""

    def error(self, message):
        raise UsageError(message)

    def exit(self, status=0, message=None):
        raise UsageError((message or "").strip() or "--help is not an option of a job")


@lru_cache(maxsize=None)
def command_parser(kind: str) -> argparse.ArgumentParser:
    """The ``python -m mimaface_core KIND`` subparser (raising instead of exiting)."""
    from ..cli.main import build_parser

    if kind not in KINDS:
        raise MIMAFaceError(f"kind {kind!r}: use one of {', '.join(KINDS)}.")
    parser = build_parser(_RaisingParser)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[kind]


def option_action(kind: str, flag: str) -> argparse.Action | None:
    """The parser action of ``flag`` (``--clip-length``) in ``kind``'s command, or None."""
    return command_parser(kind)._option_string_actions.get(flag)


def flag_of(key: str) -> str:
    """A manifest key as its command-line flag: ``clip_length`` / ``clip-length`` → ``--clip-length``."""
    return "--" + str(key).strip().lstrip("-").replace("_", "-")


def is_path_option(kind: str, flag: str) -> bool:
    action = option_action(kind, flag)
    return flag in PATH_OPTIONS or (action is not None and action.type is Path)


def options_to_argv(kind: str, options: Mapping, base: Path, out_dir: Path | None = None,
                    names: dict | None = None) -> list[str]:
    """A manifest line's options as ``kind``'s argv: ``-``/``_`` both accepted, booleans as flags
    (true / false, 1 / 0, yes / no), relative paths resolved against ``base`` (inputs) or
    ``out_dir`` (the files the job writes). ``out`` stands for ``--out`` (animate) or ``--json``
    (evaluate). ``names`` receives {flag: key as written} for error messages.

    Raises:
        MIMAFaceError: an unknown option (with the nearest names), a list or object value, a
        boolean that is not one.
    """
    argv: list[str] = []
    names = {} if names is None else names
    for key, value in options.items():
        if key in META_KEYS or value is None or (isinstance(value, str) and not value.strip()):
            continue  # an empty CSV cell: not given
        flag = OUT_OPTION[kind] if key == "out" else flag_of(key)
        action = option_action(kind, flag)
        if action is None or flag in NOT_IN_MANIFEST:
            known = [o[2:] for o in command_parser(kind)._option_string_actions if o.startswith("--")]
            near = difflib.get_close_matches(flag[2:], known, n=3)
            hint = f" (did you mean {', '.join(near)}?)" if near else ""
            raise MIMAFaceError(f"{key!r}: not an option of {kind}{hint}; the keys are {kind}'s options without "
                                "'--' (python -m mimaface_core " + kind + " --help).")
        names[flag] = key
        if isinstance(value, (list, dict)):
            raise MIMAFaceError(f"{key!r}: give one value (a string, number or boolean), not {type(value).__name__}.")
        if action.nargs == 0:  # a switch
            text = str(value).strip().lower()
            if text not in _TRUE | _FALSE:
                raise MIMAFaceError(f"{key!r} {value!r}: a switch takes true or false.")
            if text in _TRUE:
                argv.append(flag)
            continue
        text = str(value)
        if is_path_option(kind, flag) and not Path(text).expanduser().is_absolute():
            folder = out_dir if (flag in OUTPUT_OPTIONS[kind] and out_dir is not None) else base
            text = str(Path(folder) / Path(text).expanduser())
        argv += [flag, text]
    return argv


def parse_argv(kind: str, argv: list[str]) -> argparse.Namespace:
    """``kind``'s parser on ``argv``. Raises UsageError (argparse's message)."""
    args = command_parser(kind).parse_args([str(a) for a in argv])
    args.command = kind
    return args


@dataclass
class Job:
    """One run of ``animate`` or ``evaluate``.

    Attributes:
        kind: "animate" or "evaluate".
        args: the command's parsed options (``argparse.Namespace``), exactly as the command parses them.
        argv: the argv it was parsed from (None when built from a Namespace).
        id: a name (manifest jobs); None for a command-line run.
        origin: where it came from, for messages ("jobs.jsonl line 3"); None for the command line.
        names: {flag: field name as the origin wrote it} (``{"--steps": "steps"}`` for a manifest
            line); a flag not in it is shown as the flag.
        checked: what :func:`~mimaface_core.jobs.check.check_job` found (None until checked).
    """

    kind: str
    args: argparse.Namespace
    argv: list[str] | None = None
    id: str | None = None
    origin: str | None = None
    names: dict = field(default_factory=dict)
    checked: object = None

    @classmethod
    def from_namespace(cls, kind: str, args: argparse.Namespace) -> "Job":
        """The job of an already parsed command line (the ``animate`` / ``evaluate`` commands)."""
        return cls(kind, args)

    @classmethod
    def from_argv(cls, kind: str, argv: Iterable[str], id: str | None = None, origin: str | None = None,
                  names: dict | None = None) -> "Job":
        """Parse ``argv`` with ``kind``'s parser (``Job.from_argv("animate", ["--source", ...])``).

        Raises:
            MIMAFaceError: argparse's usage error (missing, unknown or clashing options), the
            fields named as ``names`` says.
        """
        argv = [str(a) for a in argv]
        job = cls(kind, argparse.Namespace(), argv, id, origin, dict(names or {}))
        try:
            job.args = parse_argv(kind, argv)
        except UsageError as exc:
            raise MIMAFaceError(job.rename(str(exc))) from None
        return job

    @classmethod
    def from_options(cls, options: Mapping, *, base: str | Path = ".", out_dir: str | Path | None = None,
                     defaults: Iterable[str] = (), id: str | None = None, origin: str | None = None,
                     kind: str | None = None) -> "Job":
        """A job from a mapping of options (a manifest line, or Python): ``kind`` (default from
        the mapping, else "animate"), ``defaults`` an argv placed before the line's options (the
        line wins), ``base`` the folder of relative input paths, ``out_dir`` that of the outputs.

        Raises:
            MIMAFaceError: unknown, clashing or missing options, naming the key.
        """
        kind = str(kind or options.get("kind") or "animate").strip().lower()
        if kind not in KINDS:
            raise MIMAFaceError(f"'kind' {kind!r}: use one of {', '.join(KINDS)}.")
        names: dict = {}
        argv = options_to_argv(kind, options, Path(base), None if out_dir is None else Path(out_dir), names)
        return cls.from_argv(kind, [*defaults, *argv], id=id, origin=origin, names=names)

    def rename(self, message: str) -> str:
        """``message`` with each flag shown as this job's origin names it: for a job built from a
        mapping (a manifest line), the key as written, or the option without ``--`` (a key the line
        did not give: ``--source`` → ``source``); unchanged for the command line."""
        if not self.names and self.origin is None:
            return message
        return _FLAG.sub(lambda m: self.names.get(m.group(0), m.group(1)), message)

    def check(self) -> "Job":
        """Run :func:`~mimaface_core.jobs.check.check_job` (before any model loads); returns self.

        Raises:
            MIMAFaceError: the first problem, naming the field (the flag, or the manifest key).
        """
        from .check import check_job

        try:
            self.checked = check_job(self)
        except (MIMAFaceError, ValueError) as exc:
            if not self.names and self.origin is None:
                raise
            raise MIMAFaceError(self.rename(" ".join(str(exc).split()))) from exc
        return self

    def outputs(self) -> list[Path]:
        """The files this job writes (its output, and --save-motion / --plot when given)."""
        found = []
        for flag in OUTPUT_OPTIONS[self.kind]:
            value = getattr(self.args, flag[2:].replace("-", "_"), None)
            if value is not None:
                found.append(Path(value))
                if flag == "--save-motion":
                    found[-1] = found[-1].with_suffix(".json")
        return found

    def inputs(self) -> list[Path]:
        """The files and folders this job reads (every path option that is not an output),
        the weights excluded (they are identified by their path in the options)."""
        skip = set(OUTPUT_OPTIONS[self.kind]) | {"--weights", "--vae", "--audio-weights", "--mediapipe-models"}
        found = []
        for action in command_parser(self.kind)._actions:
            flag = next((o for o in action.option_strings if o.startswith("--")), None)
            if flag is None or flag in skip or not is_path_option(self.kind, flag):
                continue
            value = getattr(self.args, action.dest, None)
            if value is not None:
                found.append(Path(value))
        return found

    def fingerprint(self, hash_files: bool = False) -> str:
        """A sha256 of the job's options and of its input files (path, size and modification
        time; their contents' sha256 with ``hash_files``): equal when a rerun would redo the same."""
        options = {k: str(v) for k, v in sorted(vars(self.args).items()) if k not in ("debug", "command")}
        files = [[str(p), *_file_print(p, hash_files)] for p in self.inputs()]
        blob = json.dumps({"kind": self.kind, "options": options, "inputs": files}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()


def _file_print(path: Path, hash_files: bool) -> list:
    """[size, mtime_ns] (or [sha256]) of a file; of a folder, one digest over its files."""
    path = Path(path)
    if path.is_dir():
        digest = hashlib.sha256()
        for child in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(json.dumps([str(child.relative_to(path)), *_file_print(child, hash_files)]).encode())
        return [digest.hexdigest()]
    if not path.exists():
        return ["missing"]
    if hash_files:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        return [digest.hexdigest()]
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]
