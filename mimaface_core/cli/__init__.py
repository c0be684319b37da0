"""The command line: ``python -m mimaface_core animate|evaluate|train|convert|download``, each
command's options and the early checks that run before any model loads."""
