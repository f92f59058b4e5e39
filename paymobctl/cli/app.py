"""The root ``paymobctl`` app: global options, version, and the command groups."""

from __future__ import annotations

from typing import Annotated

import typer

from paymobctl import __version__
from paymobctl.cli import config_cmd, hmac_cmd, simulate_cmd
from paymobctl.cli.options import ConfigOpt, DbOpt, JsonOpt, NoColorOpt, ProfileOpt
from paymobctl.cli.runtime import GlobalOptions

HELP = """\
paymobctl: the command-line tool and local webhook sandbox for Paymob integrations.

Compute and explain callback HMACs, fire signed callbacks at your endpoint, run a local
Paymob emulator, receive webhooks on localhost, create deposits and run the go-live checklist.
With nothing configured every command uses the built-in 'sandbox' profile.

Exit codes: 0 ok, 1 check or verification failed, 2 usage or configuration error,
3 Paymob API or network error, 4 wait timed out, 130 interrupted.
"""

app = typer.Typer(
    name="paymobctl",
    help=HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"paymobctl {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", callback=_version, is_eager=True
        ),
    ] = False,
    profile: ProfileOpt = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
    json: JsonOpt = False,
    no_color: NoColorOpt = False,
) -> None:
    """Options given here apply to every command (they may also follow the command name)."""
    del version
    ctx.obj = GlobalOptions(profile=profile, config=config, db=db, json=json, no_color=no_color)


app.add_typer(hmac_cmd.app, name="hmac")
app.add_typer(config_cmd.app, name="config")
app.add_typer(simulate_cmd.app, name="simulate")
