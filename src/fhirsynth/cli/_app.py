"""The command line.  Logging handlers and progress bars live in this package and nowhere else.

Every command turns a :class:`~fhirsynth.errors.FhirsynthError` into one red message on
stderr and exit status 2; nothing reaches the user as a bare traceback.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import re
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from fhirsynth import __version__
from fhirsynth._atomic import PUBLICATION
from fhirsynth.errors import FhirsynthError
from fhirsynth.privacy.ledger import CHARGES, Release

app = typer.Typer(
    name="fhirsynth",
    help="Differentially private synthetic patients from FHIR R4 and clinical CSV.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _flags_without_type() -> None:
    """Help shows a flag without a value type.

    typer 0.29's help column gives every option a type, flags included (``--overwrite
    <bool>``, ``--help <bool>``), which reads as if they took a value (a trial then typed
    ``--overwrite true``). Older typer shows none; where the hook is absent nothing changes.
    """
    option = getattr(getattr(typer, "core", None), "TyperOption", None)
    shown = getattr(option, "display_type_rich", None)
    if option is None or shown is None or getattr(shown, "_fhirsynth", False):
        return

    def display_type_rich(self: Any, ctx: Any) -> str | None:
        if getattr(self, "is_flag", False) and self.metavar is None:
            return None
        return shown(self, ctx)

    display_type_rich._fhirsynth = True  # type: ignore[attr-defined]
    option.display_type_rich = display_type_rich


_flags_without_type()


class PipeConsole(Console):
    """A rich Console whose closed pipe ends the command with status 141, as a shell's
    SIGPIPE would (rich's own default exits 1, which reads as a failure)."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError


console = PipeConsole(stderr=True, highlight=False)

F = TypeVar("F", bound=Callable[..., Any])

SAMPLING_HELP = (
    "balanced (default): each column's values are spread over its parent groups by "
    "systematic sampling in random row order, so the table follows the model with little "
    "Monte-Carlo noise; iid: every patient drawn independently.")


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, ``timeout``, a scheduler, ``docker stop``), raised where the
    command is, so that every output in progress is removed as on Ctrl-C."""


def signal_exception(signum: int) -> type[KeyboardInterrupt] | None:
    """The exception a signal raises now: KeyboardInterrupt for SIGINT, :class:`Terminated`
    for SIGTERM; None while (or after) outputs are moved into place, when the signal is
    only remembered and reported as the command ends."""
    exc = Terminated if signum == signal.SIGTERM else KeyboardInterrupt
    return None if PUBLICATION.defer(exc) else exc


def on_signal(signum: int, frame: Any) -> None:
    """The commands' SIGINT / SIGTERM handler (:func:`signal_exception`)."""
    exc = signal_exception(signum)
    if exc is not None:
        raise exc


#: delay before a swallowed signal is sent again (:func:`_unraisable`)
RESIGNAL_SECONDS = 0.05


def _unraisable(hook: Any) -> Any:
    """An ``sys.unraisablehook`` that does not let a signal's exception be swallowed.

    A signal arriving while Python runs a finaliser or a weak-reference callback raises
    there, where the interpreter prints "Exception ignored in ..." with a traceback and
    carries on: the command went on for minutes after SIGTERM (trial 16).  This hook prints
    nothing for those and has the signal sent again a moment later (from a timer thread, so
    that the handler runs once the finaliser is over), and the command stops as on any
    other interrupt.
    """

    def on_unraisable(unraisable: Any) -> None:
        exc = unraisable.exc_value
        if isinstance(exc, KeyboardInterrupt):
            signum = signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT
            again = threading.Timer(RESIGNAL_SECONDS, os.kill, (os.getpid(), signum))
            again.daemon = True
            again.start()
            return
        hook(unraisable)

    return on_unraisable


def _exit_code(exc: type[BaseException] | BaseException) -> int:
    is_term = exc is Terminated or isinstance(exc, Terminated)
    return 143 if is_term else 130


def _charge_note(charged: list[tuple[Path, Release]]) -> str:
    """What an interrupted command spent: exactly the charges it made, or none."""
    if charged:
        parts = [f"epsilon {r.epsilon:g}" + (f", delta {r.delta:g}" if r.delta else "") +
                 f" (run {r.run_id[:8]}) on the ledger {path}" for path, r in charged]
        return ("this run was charged " + "; ".join(parts) + ", and the charge stays: "
                "spent budget is spent whether or not the noise was drawn "
                "(`fhirsynth ledger show`)")
    if CHARGES.pending is not None:
        return (f"the ledger {CHARGES.pending} was being charged when the run stopped: "
                "`fhirsynth ledger show` says whether the charge was recorded")
    return "nothing was charged to the ledger"


def friendly_errors(func: F) -> F:
    """Turn fhirsynth errors into one clear message and exit status 2.

    Ctrl-C exits 130 and SIGTERM 143, each after the outputs in progress are removed;
    a closed pipe (``fhirsynth columns x.csv | head``) ends quietly.
    """

    takes_ledger = "ledger" in inspect.signature(func).parameters

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        main = threading.current_thread() is threading.main_thread()
        PUBLICATION.reset()
        mark = CHARGES.mark()
        previous = ({s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
                    if main else {})
        hook = sys.unraisablehook
        if main:
            sys.unraisablehook = _unraisable(hook)
        try:
            result = func(*args, **kwargs)
            if PUBLICATION.pending is not None:
                what = "terminated" if PUBLICATION.pending is Terminated else "interrupted"
                console.print(f"[bold red]{what}[/] after the outputs were complete: they are "
                              "in place and whole")
                raise typer.Exit(code=_exit_code(PUBLICATION.pending))
            return result
        except FhirsynthError as exc:
            console.print(f"[bold red]error:[/] {escape(str(exc))}", markup=True, soft_wrap=True)
            raise typer.Exit(code=2) from None
        except KeyboardInterrupt as exc:
            what = "terminated" if isinstance(exc, Terminated) else "interrupted"
            charged = CHARGES.since(mark)
            # a command without a ledger (sample, report, verify) has nothing to say about one
            note = (f"; {escape(_charge_note(charged))}"
                    if takes_ledger or charged or CHARGES.pending is not None else "")
            console.print(f"[bold red]{what}[/]: no output was written{note}")
            raise typer.Exit(code=_exit_code(exc)) from None
        except BrokenPipeError:
            # the reader of our output went away: nothing more to say to it
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(code=141) from None
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except MemoryError:
            # e.g. `sample -n 2000000000`: the outputs in progress were temporary files
            console.print("[bold red]error:[/] out of memory: nothing was written; ask for "
                          "fewer rows (-n / --rows) or run on a machine with more memory")
            raise typer.Exit(code=2) from None
        except Exception as exc:  # an unexpected failure: one line, no values, no traceback
            logging.getLogger("fhirsynth").debug("internal error", exc_info=True)
            console.print(
                f"[bold red]internal error[/] ({type(exc).__name__}): fhirsynth failed "
                "unexpectedly and wrote no output. Run again with -vv to see the traceback "
                "(it may quote input values: keep it with the custodian) and report the issue."
            )
            raise typer.Exit(code=3) from None
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            sys.unraisablehook = hook

    return wrapper  # type: ignore[return-value]


def _setup_logging(verbose: int) -> None:
    import warnings

    # pgmpy announces its own API moves on import; they are not the user's concern
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"pgmpy(\..*)?$")

    def show(message: Any, category: Any, filename: str, lineno: int, file: Any = None,
             line: Any = None) -> None:
        console.print(f"[yellow]warning:[/] {escape(str(message))}")

    warnings.showwarning = show
    level = logging.WARNING - 10 * min(verbose, 2)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("fhirsynth")
    root.handlers = [h for h in root.handlers if isinstance(h, logging.NullHandler)]
    root.addHandler(handler)
    root.setLevel(level)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"fhirsynth {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    # metavar="" because typer's rich help shows a type placeholder (<int>, <bool>) even for
    # options that take no value (fastapi/typer issue 1869); these two are flags
    verbose: int = typer.Option(
        0, "--verbose", "-v", count=True, metavar="", show_default=False,
        help="More log output; a flag, repeat it: -v INFO, -vv DEBUG (no value).",
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, metavar="",
        help="Print the version.",
    ),
) -> None:
    _setup_logging(verbose)


_VERBOSE = re.compile(r"-v+|--verbose")


def hoist_verbose(argv: list[str]) -> list[str]:
    """``argv`` with ``-v``/``-vv``/``--verbose`` given after the command moved before it.

    The flag belongs to ``fhirsynth`` itself, and ``fhirsynth run -v ...`` was refused with
    "No such option: -v" (trial 19).  Tokens after ``--`` are left alone."""
    end = argv.index("--") if "--" in argv else len(argv)
    flags = [a for a in argv[:end] if _VERBOSE.fullmatch(a)]
    rest = [a for a in argv[:end] if not _VERBOSE.fullmatch(a)]
    return flags + rest + argv[end:]


def main() -> None:
    """Console-script entry point."""
    from fhirsynth.cli import learn, ledger, release  # noqa: F401  (register the commands)

    app(args=hoist_verbose(sys.argv[1:]))
