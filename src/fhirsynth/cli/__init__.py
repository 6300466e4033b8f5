"""The ``fhirsynth`` command line (typer).

Every command turns a :class:`~fhirsynth.errors.FhirsynthError` into one message on stderr
and exit status 2, and any other failure into one line and exit status 3; nothing reaches
the user as a bare traceback.  Commands are registered by :mod:`.learn`, :mod:`.ledger` and
:mod:`.release`.
"""

from fhirsynth.cli import learn, ledger, release  # noqa: F401  (register the commands)
from fhirsynth.cli._app import app, console, friendly_errors, main

__all__ = ["app", "console", "friendly_errors", "main"]

if __name__ == "__main__":
    main()
