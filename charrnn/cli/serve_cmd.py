"""`charrnn serve`: keep a model loaded behind a local HTTP API and a writing page."""

from __future__ import annotations

import signal

import click

from charrnn.cli.options import Integer, checkpoint_option, checkpoint_path_of, engine_option, load_engine


@click.command()
@click.argument("run", required=False, type=click.Path(), metavar="[RUN]")
@checkpoint_option
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. The default answers this machine only; 0.0.0.0 opens the model to the network.",
)
@click.option("--port", type=Integer(min=0, max=65535), default=8000, show_default=True, help="0 picks a free port.")
@click.option(
    "--max-chars",
    type=Integer(min=1),
    default=2000,
    show_default=True,
    help="Most characters (n) a request may ask for.",
)
@click.option(
    "--max-samples", type=Integer(min=1), default=16, show_default=True, help="Most samples (num_samples) per request."
)
@click.option(
    "--max-body", type=Integer(min=64), default=64 * 1024, show_default=True, help="Largest request body, in bytes."
)
@click.option(
    "--workers",
    type=Integer(min=1),
    default=1,
    show_default=True,
    help="Generations run at once; other requests wait their turn. One already uses the cores (the BLAS "
    "threads), so on 2 cores more are slower in total (benchmarks/bench_serve.py).",
)
@engine_option
@click.option("-q", "--quiet", is_flag=True, help="No line on stderr per request (the start and stop lines stay).")
def serve(run, checkpoint_path, host, port, max_chars, max_samples, max_body, workers, engine, quiet):
    """Serve a model over HTTP: a JSON API and a page to write with.

    \b
    POST /v1/generate  {"seed", "n", "temperature", "top_k", "top_p", "greedy",
                        "num_samples", "rng_seed", "stop"}: the meanings and defaults of
                        `charrnn sample`; answers {"texts", "checkpoint", "elapsed_ms"}
    GET  /v1/info      what `charrnn info --json` prints
    GET  /healthz      {"status": "ok"}
    GET  /             a writing page: Tab asks for continuations of the text before the cursor

    RUN (or -c) is a run directory (its best.npz) or a checkpoint file; without
    either, the most recently written run under checkpoints/. The model is loaded
    once. A bad request gets a 4xx answer {"error": MESSAGE}, the message `charrnn
    sample` would print. Ctrl-C or SIGTERM stops the server: it stops accepting, lets
    running requests finish, and exits 0.

    \b
    Examples:
      charrnn serve checkpoints/tales
      curl -s localhost:8000/v1/generate -H 'Content-Type: application/json' \\
           -d '{"seed": "LISK:", "n": 200, "num_samples": 3}' | jq -r '.texts[]'
      charrnn serve -c checkpoints/tales --port 0 --max-chars 500 -q
    """
    from charrnn import checkpoint
    from charrnn.cli.info_cmd import describe
    from charrnn.serve import api, page
    from charrnn.serve.server import Server, Service

    path = checkpoint_path_of(checkpoint_path, positional=run)  # the start line names it
    ckpt = checkpoint.load(path)
    limits = api.Limits(max_chars=max_chars, max_samples=max_samples, max_body=max_body)
    log = None if quiet else (lambda line: click.echo(line, err=True))
    cells = load_engine(engine, ckpt.model_cfg.cell, None if quiet else lambda s: click.echo(s, err=True))
    service = Service(ckpt, path, describe(path, ckpt), limits, workers, page.render(ckpt, path, limits), log, cells)
    server = Server(host, port, service)
    where = "this machine only" if server.loopback else "every address that can reach this machine"
    click.echo(f"serving {path} on {server.url} ({where}; {workers} worker(s)); Ctrl-C stops", err=True)
    try:
        server.run()
    except KeyboardInterrupt as exc:
        name = signal.Signals(getattr(exc, "signum", signal.SIGINT)).name
        click.echo(f"stopped by {name}", err=True)
