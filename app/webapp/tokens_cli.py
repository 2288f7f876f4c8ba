"""`flask --app webapp tokens create NAME | list | revoke NAME`: the API's write tokens (webapp.tokens).

create prints the token once, as the last line of stdout (the lines before it are the application's JSON logs:
`flask tokens create ci | tail -n 1`); the database keeps only its hash. revoke takes effect on the next request in
every worker and task. Run them where the application's database login is (a one-off task of the service's task
definition, a web container). Every failure is one line on stderr and exit code 1."""

from __future__ import annotations

import click
from flask import g
from flask.cli import AppGroup

from webapp import tokens
from webapp.database_cli import reported

tokens_cli = AppGroup("tokens", help="API tokens: create NAME, list, revoke NAME.")


def _reported(command):
    def run(*args, **kwargs):
        g.db_primary = True  # an operator's command reads what it (or the last one) just wrote: not a replica
        try:
            return command(*args, **kwargs)
        except tokens.TokenError as err:
            raise click.ClickException(str(err)) from None
    run.__name__, run.__doc__ = command.__name__, command.__doc__
    return reported(run)


@tokens_cli.command("create")
@click.argument("name")
@_reported
def create(name: str) -> None:
    """Make a token for NAME (a client, a person, a pipeline) and print it, once."""
    click.echo(tokens.create(name))
    click.echo(f"token {name} created: it is shown this once; store it where the client keeps secrets", err=True)


@tokens_cli.command("list")
@_reported
def list_tokens() -> None:
    """Every token: name, created, last used, revoked (never the token)."""
    def when(moment) -> str:
        return moment.isoformat(timespec="seconds") if moment else "-"

    for found in tokens.listed():
        click.echo(f"{found.name}\tcreated {when(found.created_at)}\tlast used {when(found.last_used_at)}\t"
                   f"revoked {when(found.revoked_at)}")


@tokens_cli.command("revoke")
@click.argument("name")
@_reported
def revoke(name: str) -> None:
    """Revoke NAME's token: refused (403) from the next request on."""
    tokens.revoke(name)
    click.echo(f"token {name} revoked")
