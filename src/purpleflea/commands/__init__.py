"""The ``purpleflea`` command's subcommands, one module each.

A command module has ``register(subparsers)``, which adds its parser and sets ``run`` (a
function of the parsed arguments returning the exit status) as the parser's default. Heavy
imports (the server, numpy) happen inside ``run`` so that ``purpleflea tail`` starts fast.
"""
