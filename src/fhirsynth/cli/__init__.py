"""The ``fhirsynth`` command line (typer).

Every command turns a :class:`~fhirsynth.errors.FhirsynthError` into one message on stderr
and exit status 2, and any other failure into one line and exit status 3; nothing reaches
the user as a bare traceback.  Commands are registered by :mod:`.audit`, :mod:`.learn`,
:mod:`.ledger` and :mod:`.release`.
"""

import inspect

from fhirsynth.cli import audit, learn, ledger, release  # noqa: F401  (register the commands)
from fhirsynth.cli._app import app, console, friendly_errors, main

__all__ = ["app", "console", "friendly_errors", "main"]


def _reflow_help() -> None:
    """Join the lines of each paragraph of every command's docstring.

    Typer's help keeps a docstring's line breaks and then wraps each line to the terminal,
    which split sentences into a long line and a one-word line; a paragraph is one line of
    help text, wrapped by the terminal alone.
    """
    for group in (app, ledger.ledger_app):
        for command in group.registered_commands:
            f = command.callback
            if f is not None and f.__doc__:
                paragraphs = inspect.cleandoc(f.__doc__).split("\n\n")
                f.__doc__ = "\n\n".join(" ".join(p.split()) for p in paragraphs)


_reflow_help()

if __name__ == "__main__":
    main()
