"""The command-line layer: typer apps, rendering, and the single place errors become exit codes."""

from __future__ import annotations

import gc
import os
import sys

from paymobctl.errors import ExitCode, PaymobctlError


class _Startup:
    active = False  # a process of its own is loading typer and the command (see end_startup)


def main(argv: list[str] | None = None) -> int:
    """Run paymobctl with ``argv`` (None: the process's own arguments, as the console script
    does); return the exit code instead of exiting."""
    if argv is None and gc.isenabled():
        # Start-up allocates tens of thousands of objects that live as long as the process
        # (modules, classes, typer's commands); the collector would walk them again and again
        # while they load (23 M of `hmac verify`'s 330 M instructions). Off until the command
        # runs, and never in a test that calls main() with arguments.
        gc.disable()
        _Startup.active = True
    try:
        return _main(argv)
    finally:
        end_startup()


def end_startup() -> None:
    """The command is loaded and about to run: freeze what start-up created (never traversed
    by the collector again) and collect garbage as usual from here on. Only in a process of
    its own: :func:`main` called with arguments (tests, embedding) leaves the collector alone."""
    if _Startup.active:
        _Startup.active = False
        gc.freeze()
        gc.enable()


def _main(argv: list[str] | None) -> int:
    import typer
    from typer.main import get_command

    from paymobctl.cli.app import app
    from paymobctl.cli.output import Output

    command = get_command(app)
    args = sys.argv[1:] if argv is None else argv
    out = Output(no_color="--no-color" in args)
    options = args[: args.index("--")] if "--" in args else args
    json_mode = "--json" in options

    def fail(message: str, hint: str | None, code: int) -> int:
        out.error(f"{message} — {hint}" if hint else message)
        if json_mode:
            out.error_object(message, hint, code)
        return code

    try:
        result = command.main(args=args, prog_name="paymobctl", standalone_mode=False)
    except PaymobctlError as exc:
        if exc.reported:  # e.g. `deposit --wait`'s outcome lines already said it
            return int(exc.exit_code)
        return fail(exc.message, exc.hint, int(exc.exit_code))
    except typer.Exit as exc:
        return int(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        return fail("interrupted", None, int(ExitCode.INTERRUPTED))
    except typer.TyperException as exc:
        code = int(getattr(exc, "exit_code", 2))
        if type(exc).__name__ == "NoArgsIsHelpError":  # `paymobctl hmac` alone: the group's help
            sys.stdout.write(exc.format_message() + "\n")
            return code
        message = exc.format_message()
        ctx = getattr(exc, "ctx", None)
        where = ctx.command_path if ctx is not None else "paymobctl"
        if code == 2:
            return fail(message, f"see `{where} --help`", code)
        return fail(message, None, code)
    except SystemExit as exc:
        # typer turns a broken pipe (`paymobctl events export | head`) into exit 1 after wrapping
        # stdout; the reader going away is not an error.
        if type(sys.stdout).__name__ == "PacifyFlushWrapper":
            return int(ExitCode.OK)
        return int(exc.code) if isinstance(exc.code, int) else int(ExitCode.USAGE)
    except BrokenPipeError:
        # Output piped into `head` and the reader went away: not an error worth a trace.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return int(ExitCode.OK)
    except Exception as exc:  # a bug: say so in one line; the trace only on request
        if os.environ.get("PAYMOBCTL_DEBUG"):
            raise
        return fail(
            f"internal error: {type(exc).__name__}: {exc}",
            "this is a paymobctl bug; rerun with PAYMOBCTL_DEBUG=1 for the traceback and report it",
            int(ExitCode.INTERNAL),
        )
    if isinstance(result, int) and not isinstance(result, bool):
        if result == ExitCode.INTERRUPTED:  # typer turns Ctrl-C into a returned 130
            return fail("interrupted", None, result)
        return result
    return int(ExitCode.OK)


def run() -> None:
    """Console-script entry point."""
    code = main()
    try:
        sys.stdout.flush()
    except BrokenPipeError:  # `paymobctl events export | head`: the reader left, which is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(code)
