"""``--help`` text: the default shown once, only where it tells something (not after required
options, switches, or a help text that already states it), and the top level's examples."""

from __future__ import annotations

import argparse


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """argparse's defaults formatter without "(default: None)", "(default: False)" or a second
    default after a help text that gives one."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default is None or action.default is False or action.required or "default" in text:
            return text
        return super()._get_help_string(action)


class ExamplesHelpFormatter(argparse.RawDescriptionHelpFormatter):
    """The top level: the description and the examples epilog kept as written."""


EXAMPLES = """\
examples:
  python -m mimaface_core download                      # the weights, once (see "where the weights go" below)
  python -m mimaface_core animate --source example_media/portrait_eileen_collins.jpg \\
      --driving example_media/driving_talking.mp4 --out animated.mp4
  python -m mimaface_core animate --source photo.jpg --audio speech.wav --out speaking.mp4
  python -m mimaface_core evaluate --generated animated.mp4 --driving example_media/driving_talking.mp4
  python -m mimaface_core COMMAND --help                # every option of a command

where the weights go (when --weights is not given): $MIMAFACE_WEIGHTS when set, else
ComfyUI/models/mimaface/MIMAFace when this pack is in a ComfyUI's custom_nodes, else
~/.cache/mimaface/MIMAFace.
"""
