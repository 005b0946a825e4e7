"""``dask scheduler --preload taskscope_dask --taskscope-trace run.ndjson``: the plugin set up
by Dask's preload mechanism, with its own command-line options."""
from __future__ import annotations

from typing import Any

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
    help="Token Observe calls must carry (authorization: Bearer TOKEN); required to bind a "
    "non-loopback address. Default: $TASKSCOPE_TOKEN. Visible to every user in `ps`: prefer "
    "$TASKSCOPE_TOKEN or --taskscope-token-file.",
)
@click.option(
    "--taskscope-token-file",
    "token_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Read the token from the first line of this file.",
)
@click.option(
    "--taskscope-tls-cert",
    "tls_cert",
    type=click.Path(dir_okay=False),
    default=None,
    help="Serve the Observe gRPC over TLS with this certificate chain (PEM); needs "
    "--taskscope-tls-key.",
)
@click.option(
    "--taskscope-tls-key",
    "tls_key",
    type=click.Path(dir_okay=False),
    default=None,
    help="The private key (PEM) of --taskscope-tls-cert.",
)
@click.option(
    "--taskscope-insecure",
    "insecure",
    is_flag=True,
    default=False,
    help="Serve a token beyond loopback without TLS: anyone on the network path can read it.",
)
@click.option(
    "--taskscope-interval",
    "interval",
    type=float,
    default=0.5,
    show_default=True,
    help="Seconds between worker memory samples and trace flushes.",
)
def dask_setup(
    scheduler: Any,
    trace: str | None,
    serve: str | None,
    token: str | None,
    token_file: str | None,
    tls_cert: str | None,
    tls_key: str | None,
    insecure: bool,
    interval: float,
) -> None:
    """Adds the taskscope plugin to a scheduler started with ``--preload taskscope_dask``."""
    if trace is None and serve is None:
        raise click.UsageError(
            "--preload taskscope_dask needs --taskscope-trace PATH and/or --taskscope-serve"
        )
    if (tls_cert is None) != (tls_key is None):
        raise click.UsageError("--taskscope-tls-cert and --taskscope-tls-key go together")
    if serve is not None:
        from .observe import check_cleartext, parse_address, read_pem, resolve_token

        # Refuse early, before the scheduler starts.
        host, port = parse_address(serve)
        resolved = resolve_token(host, port, token, token_file)
        if tls_cert is not None and tls_key is not None:
            read_pem(tls_cert, "tls_cert", "CERTIFICATE")
            read_pem(tls_key, "tls_key", "PRIVATE KEY")
        check_cleartext(host, port, resolved, tls_cert is not None, insecure)
    plugin = TaskscopePlugin(
        path=trace,
        serve=serve,
        token=token,
        token_file=token_file,
        tls_cert=tls_cert,
        tls_key=tls_key,
        insecure=insecure,
        interval=interval,
    )
    scheduler.add_plugin(plugin)
