"""`charrnn sample`: generate text from a checkpoint, streamed to stdout."""

from __future__ import annotations

import glob
import json
import os
import sys
import time

import click

from charrnn.cli.options import FiniteFloatRange, json_option
from charrnn.errors import CheckpointError


def find_latest_run(root: str = "checkpoints") -> str:
    """The run directory under ``root`` whose checkpoint was written most recently."""
    found = glob.glob(os.path.join(root, "*", "*.npz"))
    if not found:
        raise CheckpointError(
            f"no checkpoint found under {root}/; run `charrnn train FILE` first, or pass --checkpoint PATH"
        )
    return os.path.dirname(max(found, key=os.path.getmtime))


def _write_stream(chunks, flush_every: float = 0.05) -> None:
    """Write characters as they come, flushing at line ends and at least every 50 ms."""
    out = sys.stdout
    last = time.monotonic()
    for ch in chunks:
        out.write(ch)
        now = time.monotonic()
        if ch == "\n" or now - last > flush_every:
            out.flush()
            last = now
    out.flush()


@click.command()
@click.option(
    "-c",
    "--checkpoint",
    "checkpoint_path",
    type=click.Path(),
    help="A checkpoint file, or a run directory (its best.npz is used) "
    "[default: the most recently written run under checkpoints/].",
)
@click.option(
    "-s",
    "--seed",
    default="",
    show_default=False,
    help="Text to start from; it is fed through the network first and printed. Empty means a newline.",
)
@click.option(
    "-n", "--length", "n", type=click.IntRange(min=0), default=500, show_default=True, help="Characters to generate."
)
@click.option(
    "-t",
    "--temperature",
    type=FiniteFloatRange(0, min_open=True),
    default=0.8,
    show_default=True,
    help="Below 1: safer, more repetitive text; above 1: wilder.",
)
@click.option(
    "-k",
    "--top-k",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Sample only among the k most likely characters; 0 means all.",
)
@click.option("--greedy", is_flag=True, help="Always take the most likely character (argmax).")
@click.option(
    "--rng-seed", type=int, default=None, help="Seed for the draws: the same seed and checkpoint give the same text."
)
@click.option("--stop", default=None, help="Stop once this string has been generated (e.g. '\\n').")
@click.option(
    "--num-samples",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Generate this many samples in one batched pass.",
)
@json_option('one object per sample: {"seed", "text", "checkpoint"}')
def sample(checkpoint_path, seed, n, temperature, top_k, greedy, rng_seed, stop, num_samples, as_json):
    """Generate text from a trained model.

    \b
    Examples:
      charrnn sample --seed "KING:" -n 500
      charrnn sample -c checkpoints/names --seed "" --stop $'\\n' --num-samples 10
      charrnn sample --temperature 0.5 --rng-seed 7 | head -c 200
    """
    import numpy as np

    from charrnn import checkpoint, sampling

    path = checkpoint.resolve(checkpoint_path or find_latest_run())
    ckpt = checkpoint.load(path)
    if stop and "\\" in stop:  # let scripts write --stop '\n' as well as $'\n'
        stop = stop.encode("latin-1", "backslashreplace").decode("unicode_escape")
    rng = np.random.default_rng(rng_seed)
    seed = sampling.resolve_seed(seed, ckpt.vocab)
    steps = sampling.generate(
        ckpt.params,
        ckpt.model_cfg,
        ckpt.vocab,
        seed,
        n,
        temperature=temperature,
        top_k=top_k,
        greedy=greedy,
        rng=rng,
        num_samples=num_samples,
        stop=stop,
    )
    try:
        _emit(steps, seed, stop, path, n, num_samples, as_json)
    except BrokenPipeError:
        # The reader went away (`charrnn sample | head`): that ends sampling, quietly and
        # successfully. stdout now points at devnull so the final flush cannot complain.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _emit(steps, seed, stop, path, n, num_samples, as_json):
    if num_samples == 1 and not as_json:
        sys.stdout.write(seed)
        _write_stream(chars[0] for chars in steps)
        if stop is None:
            sys.stdout.write("\n")
        sys.stdout.flush()
        return
    texts = ["".join(parts) for parts in zip(*steps)] if n else [""] * num_samples
    for text in texts:
        if as_json:
            click.echo(json.dumps({"seed": seed, "text": text, "checkpoint": path}))
        else:
            click.echo(seed + text)
