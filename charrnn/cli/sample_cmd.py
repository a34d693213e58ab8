"""`charrnn sample`: generate text from a checkpoint, streamed to stdout."""

from __future__ import annotations

import json
import os
import sys
import time

import click

from charrnn.cli.options import (
    Integer,
    checkpoint_option,
    checkpoint_path_of,
    engine_option,
    field_option,
    json_option,
    load_engine,
    quiet_option,
)
from charrnn.config import SampleOptions
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
@click.argument("run", required=False, type=click.Path(), metavar="[RUN]")
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
@field_option(SampleOptions, "n", "-n", "--length")
@field_option(SampleOptions, "temperature", "-t", "--temperature")
@field_option(SampleOptions, "top_k", "-k", "--top-k")
@field_option(SampleOptions, "top_p", "-p", "--top-p")
@field_option(SampleOptions, "greedy", "--greedy")
@click.option(
    "--rng-seed",
    type=Integer(min=0),
    default=None,
    help="Seed for the draws: the same seed and checkpoint give the same text.",
)
@field_option(SampleOptions, "stop", "--stop")
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
    "there, the share of its characters inside copied stretches, and which of its lines are whole lines of "
    "the training text (shown for a text of short lines, such as a list of names).",
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
    run,
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

    RUN (or -c) is a run directory (its best.npz) or a checkpoint file; without
    either, the most recently written run under checkpoints/, named on stderr.
    Several samples are each headed by a line "--- sample K of N ---", or one per
    line when --stop ends with a line break.

    \b
    Examples:
      charrnn sample checkpoints/tales --seed "LISK:" -n 500
      charrnn sample -c checkpoints/names --seed "" --stop '\\n' --num-samples 10
      charrnn sample --seed-file opening.txt --top-p 0.9 -n 1000
      charrnn sample --temperature 0.5 --rng-seed 7 | head -c 200
      charrnn sample -n 2000 --report-copying --json
    """
    from charrnn import checkpoint, copying, data, sampling, trained_text

    if seed is not None and seed_file is not None:
        raise UsageError("give the seed text with --seed or with --seed-file, not both")
    if not report_copying and (corpus is not None or copy_min_span is not None):
        given = "--corpus" if corpus is not None else "--copy-min-span"
        raise UsageError(f"{given} only applies to the copying report: add --report-copying")
    note = None if quiet else (lambda line: click.echo(line, err=True))
    path = checkpoint_path_of(checkpoint_path, note, positional=run)
    ckpt = checkpoint.load(path)
    copy_report = corpus_path = None
    if report_copying:  # before sampling: a training text that cannot be used stops here, not after
        if corpus is not None:
            if corpus == data.STDIN and seed_file == data.STDIN:
                raise UsageError("--corpus and --seed-file cannot both read standard input")
            data.check_input(corpus)
        index, corpus_path, notes = copying.training_text(ckpt, path, corpus)
        for line in notes if not quiet else ():
            click.echo(line, err=True)
        min_span = copy_min_span or copying.DEFAULT_MIN_SPAN
        copy_report = lambda text: index.report(text, min_span, seed)  # the seed as fed, read when called
    if seed_file is not None:
        data.check_input(seed_file)
        seed = "".join(data.iter_text(seed_file, trained_text.encoding(ckpt)))
    seed = seed or ""
    if seed.strip().isdigit() and seed_file is None:  # nanoGPT's --seed is the random seed
        if not drop_unknown and ckpt.vocab.unknown(seed):
            raise UsageError(
                f"the seed {seed!r} has characters the model never saw; --seed is the text to start from, "
                f"the random seed is --rng-seed"
            )
        if note is not None:
            note(f"note: --seed is the text to start from ({seed!r} is fed to the model); the random seed: --rng-seed")
    if stop and "\\" in stop:  # let scripts write --stop '\n' as well as $'\n'
        stop = stop.encode("latin-1", "backslashreplace").decode("unicode_escape")
    options = SampleOptions(n=n, temperature=temperature, top_k=top_k, top_p=top_p, greedy=greedy, stop=stop)
    if drop_unknown:
        seed, dropped = sampling.drop_unknown(seed, ckpt.vocab)
        if dropped and not quiet:
            click.echo(data.dropped_note(dropped), err=True)
    samples = sampling.generate(
        ckpt.params,
        ckpt.model_cfg,
        ckpt.vocab,
        seed,
        options,
        rng_seed=rng_seed,
        num_samples=num_samples,
        engine=load_engine(engine, ckpt.model_cfg.cell, None if quiet else lambda s: click.echo(s, err=True)),
    )
    try:
        reports = _emit(samples, seed, stop, path, num_samples, as_json, copy_report, corpus_path)
        if copy_report is not None and not as_json:
            name = data.text_name(corpus_path)
            if stop and stop.endswith("\n") and num_samples > 1:  # a list, one sample a line
                click.echo(_lines_summary(reports, name), err=True)
            else:
                for i, report in enumerate(reports):
                    label = "copying" if num_samples == 1 else f"copying, sample {i + 1}"
                    click.echo(_copying_lines(report, label, name, index.short_lines), err=True)
    except BrokenPipeError:
        # The reader went away (`charrnn sample | head`): that ends sampling, quietly and
        # successfully. stdout now points at devnull so the final flush cannot complain.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def header(index: int, count: int) -> str:
    """The line above each of several samples: they contain blank lines themselves."""
    return f"--- sample {index + 1} of {count} ---\n"


def _emit(samples, seed, stop, path, num_samples, as_json, copy_report=None, corpus=None) -> list:
    """Print the samples. One sample without --json streams as it is generated. Several
    are one per line when --stop ends with a line end (a list of names), else each
    under its header line. The seed is printed as given (an empty one as nothing).

    ``copy_report`` (text -> copying.CopyReport) reports on the generated text of each
    sample, the seed left out: inside each JSON object (with the ``corpus`` compared
    with), else returned, one per sample."""
    one_per_line = bool(stop) and stop.endswith("\n")
    reports = []
    for i, chars in enumerate(samples):
        if as_json:
            text = "".join(chars)
            record = {"seed": seed, "text": text, "checkpoint": path}
            if copy_report is not None:
                record["copying"] = {**copy_report(text).to_dict(), "corpus": corpus}
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
            sys.stdout.write(text if one_per_line else header(i, num_samples) + text)
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


def _copying_lines(report, label: str, name: str, short_lines: bool) -> str:
    """The copying report of one sample for stderr: its longest copied substring, the
    share in copied stretches, and (for a text of short lines) which lines are new."""
    longest = report.longest_text
    if not report.chars:
        return f"{label}: the sample is empty: nothing is copied"
    if longest:
        shown = repr(longest[:SHOWN_CHARS])
        if len(longest) > SHOWN_CHARS:
            shown += f" ... ({len(longest) - SHOWN_CHARS:,} more)"
        first = (
            f"{label}: the longest substring also in {name} has {report.longest_length:,} characters "
            f"(at character {report.longest_offset:,} of it): {shown}"
        )
    else:
        first = f"{label}: no character of the sample occurs in {name}"
    lines = [
        first,
        f"{label}: {report.copied_share:.1%} of the {report.chars:,} generated characters "
        f"({report.copied_chars:,}) lie inside stretches of {report.min_span}+ characters copied from {name}",
    ]
    if short_lines and report.lines:
        n, found = len(report.lines), len(report.lines_in_text)
        lines.append(
            f"{label}: {n - found:,} of its {n:,} complete lines ({(n - found) / n:.1%}) are new; "
            f"{found:,} are whole lines of {name}"
        )
    return "\n".join(lines)


SHOWN_LINES = 10  # of the generated lines found in the training text, on stderr


def _lines_summary(reports, name: str) -> str:
    """One sample a line (--stop '\\n'): how many are new and which are lines of the text
    (makemore's in-train / new), in one line for stderr."""
    lines = [line for report in reports for line in report.lines]
    found = [line for line, whole in lines if whole]
    if not lines:
        return "copying: no sample is a complete, non-empty line"
    shown = ", ".join(repr(line) for line in found[:SHOWN_LINES])
    more = f" and {len(found) - SHOWN_LINES} more" if len(found) > SHOWN_LINES else ""
    return (
        f"copying: {len(lines) - len(found)} of the {len(lines)} generated lines "
        f"({(len(lines) - len(found)) / len(lines):.1%}) are new"
        + (f"; {len(found)} are whole lines of {name}: {shown}{more}" if found else f"; none is a line of {name}")
    )
