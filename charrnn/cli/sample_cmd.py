"""`charrnn sample`: generate text from a checkpoint, streamed to stdout."""

from __future__ import annotations

import json
import os
import sys
import time

import click

from charrnn import sampling
from charrnn.cli.options import (
    FiniteFloatRange,
    Integer,
    checkpoint_option,
    checkpoint_path_of,
    engine_option,
    json_option,
    load_engine,
    quiet_option,
)
from charrnn.errors import UsageError


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
@checkpoint_option
@click.option(
    "-s",
    "--seed",
    "--prime",
    "--start",
    "seed",
    default=None,
    help="Text to start from (char-rnn's -primetext, nanoGPT's --start); it is fed through the network "
    "first and printed. Empty means a newline. The random seed is --rng-seed.",
)
@click.option(
    "--seed-file",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Start from the contents of this file ('-': standard input), read in the checkpoint's encoding.",
)
@click.option("--drop-unknown", is_flag=True, help="Remove seed characters the model never saw instead of refusing.")
@click.option(
    "-n",
    "--length",
    "n",
    type=Integer(min=0),
    default=sampling.LENGTH,
    show_default=True,
    help="Characters to generate.",
)
@click.option(
    "-t",
    "--temperature",
    type=FiniteFloatRange(0, min_open=True),
    default=sampling.TEMPERATURE,
    show_default=True,
    help="Below 1: safer, more repetitive text; above 1: wilder.",
)
@click.option(
    "-k",
    "--top-k",
    type=Integer(min=0),
    default=0,
    show_default=True,
    help="Sample only among the k most likely characters; 0 means all.",
)
@click.option(
    "-p",
    "--top-p",
    type=FiniteFloatRange(0, 1, min_open=True),
    default=1.0,
    show_default=True,
    help="Nucleus sampling: only among the most likely characters whose probabilities sum to at least p.",
)
@click.option("--greedy", is_flag=True, help="Always take the most likely character (argmax).")
@click.option(
    "--rng-seed",
    type=Integer(min=0),
    default=None,
    help="Seed for the draws: the same seed and checkpoint give the same text.",
)
@click.option("--stop", default=None, help="Stop once this string has been generated (e.g. '\\n').")
@click.option(
    "--num-samples",
    type=Integer(min=1),
    default=1,
    show_default=True,
    help="Generate this many samples, in batched passes of 256.",
)
@click.option(
    "--report-copying",
    is_flag=True,
    help="After the samples, report on stderr (with --json: in each object) how much of each sample's "
    "generated text (the seed left out) is copied from the training text: its longest substring that occurs "
    "there, and the share of its characters inside copied stretches.",
)
@click.option(
    "--copy-min-span",
    type=Integer(min=1),
    default=None,
    help="With --report-copying: a character counts as copied when it lies inside a stretch of at least this "
    "many characters (default: 20) that occurs in the training text.",
)
@click.option(
    "--corpus",
    type=click.Path(allow_dash=True),
    help="With --report-copying: the training text to compare with [default: the file the checkpoint records, "
    "which must be unchanged].",
)
@engine_option
@json_option('one object per sample: {"seed", "text", "checkpoint"} (and "copying")')
@quiet_option
def sample(
    checkpoint_path,
    seed,
    seed_file,
    drop_unknown,
    n,
    temperature,
    top_k,
    top_p,
    greedy,
    rng_seed,
    stop,
    num_samples,
    report_copying,
    copy_min_span,
    corpus,
    engine,
    as_json,
    quiet,
):
    """Generate text from a trained model.

    \b
    Examples:
      charrnn sample --seed "KING:" -n 500
      charrnn sample -c checkpoints/names --seed "" --stop '\\n' --num-samples 10
      charrnn sample --seed-file opening.txt --top-p 0.9 -n 1000
      charrnn sample --temperature 0.5 --rng-seed 7 | head -c 200
      charrnn sample -n 2000 --report-copying --json
    """
    from charrnn import checkpoint, copying, data, sampling

    if seed is not None and seed_file is not None:
        raise UsageError("give the seed text with --seed or with --seed-file, not both")
    if not report_copying and (corpus is not None or copy_min_span is not None):
        given = "--corpus" if corpus is not None else "--copy-min-span"
        raise UsageError(f"{given} only applies to the copying report: add --report-copying")
    path = checkpoint_path_of(checkpoint_path)
    ckpt = checkpoint.load(path)
    copy_report = None
    if report_copying:  # before sampling: a training text that cannot be used stops here, not after
        if corpus is not None:
            if corpus == data.STDIN and seed_file == data.STDIN:
                raise UsageError("--corpus and --seed-file cannot both read standard input")
            data.check_input(corpus)
        index, corpus_path, notes = copying.training_text(ckpt, path, corpus)
        for note in notes if not quiet else ():
            click.echo(note, err=True)
        min_span = copy_min_span or copying.DEFAULT_MIN_SPAN
        copy_report = lambda text: {**index.report(text, min_span).to_dict(), "corpus": corpus_path}
    if seed_file is not None:
        data.check_input(seed_file)
        encoding = ckpt.corpus.get("encoding") if isinstance(ckpt.corpus.get("encoding"), str) else "utf-8"
        seed = "".join(data.iter_text(seed_file, encoding))
    seed = seed or ""
    if stop and "\\" in stop:  # let scripts write --stop '\n' as well as $'\n'
        stop = stop.encode("latin-1", "backslashreplace").decode("unicode_escape")
    if drop_unknown:
        seed, dropped = sampling.drop_unknown(seed, ckpt.vocab)
        if dropped and not quiet:
            shown = ", ".join(f"{c!r} x{k}" for c, k in list(dropped.items())[:10])
            more = f" and {len(dropped) - 10} more" if len(dropped) > 10 else ""
            click.echo(f"note: dropped {sum(dropped.values())} characters the model never saw: {shown}{more}", err=True)
    samples = sampling.generate(
        ckpt.params,
        ckpt.model_cfg,
        ckpt.vocab,
        seed,
        n,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        greedy=greedy,
        rng_seed=rng_seed,
        num_samples=num_samples,
        stop=stop,
        engine=load_engine(engine, ckpt.model_cfg.cell, None if quiet else lambda s: click.echo(s, err=True)),
    )
    try:
        reports = _emit(samples, seed, stop, path, num_samples, as_json, copy_report)
        if copy_report is not None and not as_json:
            for i, report in enumerate(reports):
                click.echo(_copying_lines(report, i if num_samples > 1 else None), err=True)
    except BrokenPipeError:
        # The reader went away (`charrnn sample | head`): that ends sampling, quietly and
        # successfully. stdout now points at devnull so the final flush cannot complain.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _emit(samples, seed, stop, path, num_samples, as_json, copy_report=None) -> list[dict]:
    """Print the samples. One sample without --json streams as it is generated. Several
    are one per line when --stop ends with a line end (a list of names), else one
    blank line apart. The seed is printed as given (an empty one as nothing).

    ``copy_report`` (text -> dict) reports on the generated text of each sample, the
    seed left out: inside each JSON object, else returned, one per sample."""
    one_per_line = bool(stop) and stop.endswith("\n")
    reports = []
    for i, chars in enumerate(samples):
        if as_json:
            text = "".join(chars)
            record = {"seed": seed, "text": text, "checkpoint": path}
            if copy_report is not None:
                record["copying"] = copy_report(text)
            click.echo(json.dumps(record))
            continue
        generated = []
        if copy_report is not None:
            chars = _recorded(chars, generated)
        if num_samples == 1:
            sys.stdout.write(seed)
            _write_stream(chars)
            if stop is None:
                sys.stdout.write("\n")
            sys.stdout.flush()
        else:
            text = seed + "".join(chars)
            if not text.endswith("\n"):
                text += "\n"
            sys.stdout.write(text if one_per_line or i == num_samples - 1 else text + "\n")
            sys.stdout.flush()
        if copy_report is not None:
            reports.append(copy_report("".join(generated)))
    return reports


def _recorded(chars, into: list):
    """The characters of ``chars`` as they come, each also appended to ``into``."""
    for ch in chars:
        into.append(ch)
        yield ch


SHOWN_CHARS = 200  # of a long copied substring, on stderr (--json has all of it)


def _copying_lines(report: dict, index: int | None) -> str:
    """The copying report of one sample, as two lines for stderr."""
    from charrnn import data

    label = "copying" if index is None else f"copying, sample {index + 1}"
    name = data.text_name(report["corpus"])
    longest = report["longest"]
    if not report["chars"]:
        return f"{label}: the sample is empty: nothing is copied"
    if longest["length"]:
        text = longest["text"]
        shown = repr(text[:SHOWN_CHARS])
        if len(text) > SHOWN_CHARS:
            shown += f" ... ({len(text) - SHOWN_CHARS:,} more)"
        first = (
            f"{label}: the longest substring also in {name} has {longest['length']:,} characters "
            f"(at character {longest['corpus_offset']:,} of it): {shown}"
        )
    else:
        first = f"{label}: no character of the sample occurs in {name}"
    second = (
        f"{label}: {report['copied_share']:.1%} of the {report['chars']:,} generated characters "
        f"({report['copied_chars']:,}) lie inside stretches of {report['min_span']}+ characters copied from {name}"
    )
    return f"{first}\n{second}"
