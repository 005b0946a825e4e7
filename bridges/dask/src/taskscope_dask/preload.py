"""``dask scheduler --preload taskscope_dask --taskscope-trace run.ndjson``: the plugin set up
by Dask's preload mechanism, with its own command-line options."""
from __future__ import annotations

import click

from .plugin import TaskscopePlugin


@click.command(context_settings={"ignore_unknown_options": False})
@click.option(
    "--taskscope-trace",
    "trace",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write the run to this taskscope trace (.ndjson, or .ndjson.zst with zstandard).",
)
@click.option(
    "--taskscope-serve",
    "serve",
    default=None,
    is_flag=False,
    flag_value="127.0.0.1:7878",
    help="Serve the Observe gRPC on HOST:PORT (default 127.0.0.1:7878 when given bare).",
)
@click.option(
    "--taskscope-token",
    "token",
    default=None,
    envvar="TASKSCOPE_TOKEN",
    help="Token Observe calls must carry (authorization: Bearer TOKEN); required to bind a "
    "non-loopback address. Default: $TASKSCOPE_TOKEN.",
)
@click.option(
    "--taskscope-interval",
    "interval",
    type=float,
    default=0.5,
    show_default=True,
    help="Seconds between worker memory samples and trace flushes.",
)
def dask_setup(scheduler, trace, serve, token, interval):
    """Adds the taskscope plugin to a scheduler started with ``--preload taskscope_dask``."""
    if trace is None and serve is None:
        raise click.UsageError(
            "--preload taskscope_dask needs --taskscope-trace PATH and/or --taskscope-serve"
        )
    if serve is not None:
        from .observe import parse_address, resolve_token

        host, port = parse_address(serve)
        resolve_token(host, port, token)  # refuse early, before the scheduler starts
    plugin = TaskscopePlugin(path=trace, serve=serve, token=token, interval=interval)
    scheduler.add_plugin(plugin)
