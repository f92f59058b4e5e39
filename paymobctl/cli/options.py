"""Global options that every command honours, before or after the command name."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from paymobctl.cli.runtime import GlobalOptions, Runtime, reset_runtime, runtime, set_runtime

F = TypeVar("F", bound=Callable[..., Any])

PANEL = "Global options"


def complete_profiles(incomplete: str) -> list[str]:
    """Shell completion for --profile: the built-in sandbox and the config file's profiles."""
    import os

    from paymobctl.config import load_config_file
    from paymobctl.errors import PaymobctlError
    from paymobctl.paths import config_path
    from paymobctl.sandbox_profile import SANDBOX_PROFILE

    try:
        names = {SANDBOX_PROFILE, *load_config_file(config_path(None, os.environ)).profiles}
    except PaymobctlError:
        names = {SANDBOX_PROFILE}
    return sorted(name for name in names if name.startswith(incomplete))


def choices(*values: str) -> Callable[[str], list[str]]:
    """Shell completion for an option taking one of ``values``."""

    def complete(incomplete: str) -> list[str]:
        return [value for value in values if value.startswith(incomplete)]

    return complete


ProfileOpt = Annotated[
    str | None,
    typer.Option(
        "--profile",
        metavar="NAME",
        help="Profile to use (env PAYMOB_PROFILE; default: the configured default, else 'sandbox').",
        rich_help_panel=PANEL,
        show_default=False,
        autocompletion=complete_profiles,
    ),
]
ConfigOpt = Annotated[
    str | None,
    typer.Option(
        "--config",
        metavar="PATH",
        help="Config file (env PAYMOBCTL_CONFIG; default $XDG_CONFIG_HOME/paymobctl/config.toml).",
        rich_help_panel=PANEL,
        show_default=False,
    ),
]
DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db",
        metavar="PATH",
        help="SQLite store (env PAYMOBCTL_DB; default $XDG_DATA_HOME/paymobctl/paymobctl.db).",
        rich_help_panel=PANEL,
        show_default=False,
    ),
]
JsonOpt = Annotated[
    bool,
    typer.Option("--json", help="Print results as JSON.", rich_help_panel=PANEL),
]
NoColorOpt = Annotated[
    bool,
    typer.Option("--no-color", help="No colour (also NO_COLOR).", rich_help_panel=PANEL),
]

_GLOBAL_PARAMS = (
    ("_g_profile", ProfileOpt, None),
    ("_g_config", ConfigOpt, None),
    ("_g_db", DbOpt, None),
    ("_g_json", JsonOpt, False),
    ("_g_no_color", NoColorOpt, False),
)


def root_options(ctx: typer.Context) -> GlobalOptions:
    """Options given before the command name, stored by the root callback."""
    current: Any = ctx
    while current is not None:
        if isinstance(current.obj, GlobalOptions):
            return current.obj
        current = current.parent
    return GlobalOptions()


def command(
    group: typer.Typer, name: str | None, *, callback: bool = False, **kwargs: Any
) -> Callable[[F], F]:
    """Register ``func`` as ``name`` in ``group`` with the global options appended.

    The command body calls :func:`paymobctl.cli.runtime.runtime` to reach the merged options,
    the settings and the store. With ``callback=True`` it becomes the group's own command (run
    when no subcommand is given); options given to the group then reach its subcommands.
    """

    def decorate(func: F) -> F:
        signature = inspect.signature(func, eval_str=True)
        extra = [
            inspect.Parameter(
                param, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
            )
            for param, annotation, default in _GLOBAL_PARAMS
        ]
        ctx_param = inspect.Parameter(
            "_g_ctx", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context
        )

        @functools.wraps(func)
        def wrapper(*args: Any, **kw: Any) -> Any:
            ctx: typer.Context = kw.pop("_g_ctx")
            mine = GlobalOptions(
                profile=kw.pop("_g_profile"),
                config=kw.pop("_g_config"),
                db=kw.pop("_g_db"),
                json=kw.pop("_g_json"),
                no_color=kw.pop("_g_no_color"),
            )
            options = root_options(ctx).merged(mine)
            if callback and ctx.invoked_subcommand:
                ctx.obj = options
                return None
            current = Runtime(options)
            token = set_runtime(current)
            try:
                return func(*args, **kw)
            finally:
                current.close()
                reset_runtime(token)

        params = [*signature.parameters.values(), *extra, ctx_param]
        wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        if signature.return_annotation is not inspect.Signature.empty:
            wrapper.__annotations__["return"] = signature.return_annotation
        del wrapper.__wrapped__
        if callback:
            group.callback(invoke_without_command=True, **kwargs)(wrapper)
        else:
            group.command(name, **kwargs)(wrapper)
        return func

    return decorate


__all__ = ["PANEL", "choices", "command", "complete_profiles", "root_options", "runtime"]
