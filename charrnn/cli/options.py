"""Click parameter types and the options several commands share (one definition each)."""

from __future__ import annotations

import dataclasses
import math
import re

import click

from charrnn import engines


class FiniteFloatRange(click.FloatRange):
    """click.FloatRange that also refuses nan and inf: nan passes every range comparison
    (nan <= 0 is False) and inf passes open-ended ones, so both would reach the library
    as valid values (--temperature nan samples garbage, --lr inf diverges)."""

    def convert(self, value, param, ctx):
        rv = super().convert(value, param, ctx)
        if not math.isfinite(rv):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return rv


class Integer(click.IntRange):
    """click.IntRange whose message for a non-number says "is not a valid integer"
    (click's own says "integer range", which reads as if a range were expected)."""

    def convert(self, value, param, ctx):
        if not isinstance(value, int):
            try:
                value = int(str(value).strip())
            except ValueError:
                self.fail(f"{value!r} is not a valid integer.", param, ctx)
        return super().convert(value, param, ctx)


class Duration(click.ParamType):
    """Seconds, written as 90, 90s, 10m, 1.5h or 1h30m; 0 means no limit."""

    name = "duration"
    _part = re.compile(r"(\d+(?:\.\d+)?)([smh]?)")

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)):
            return float(value)
        text = str(value).strip().lower()
        parts = self._part.findall(text)
        if not text or "".join(n + u for n, u in parts) != text:
            self.fail(f"{value!r} is not a duration; use for example 90s, 10m or 1h30m", param, ctx)
        return float(sum(float(n) * {"": 1, "s": 1, "m": 60, "h": 3600}[u] for n, u in parts))


@dataclasses.dataclass(frozen=True)
class More:
    """A limit written +N: N more than the resumed run has already done (for a new run,
    N). orchestrate.start turns it into the run's total."""

    value: float


class Addable(click.ParamType):
    """``inner``'s values, or +VALUE for More(VALUE) (--time-limit +20m, --max-steps +500)."""

    def __init__(self, inner: click.ParamType):
        self.inner = inner
        self.name = inner.name

    def convert(self, value, param, ctx):
        if isinstance(value, str) and value.strip().startswith("+"):
            return More(self.inner.convert(value.strip()[1:], param, ctx))
        return self.inner.convert(value, param, ctx)


def _click_type(f: dataclasses.Field):
    """The click type of a config field, from its metadata (config.setting)."""
    m = f.metadata
    if m["choices"] is not None:
        return click.Choice(m["choices"])
    bounds = {"min": m["low"], "max": m["high"], "min_open": m["low_open"], "max_open": m["high_open"]}
    if m["duration"]:
        kind = Duration()
    elif f.type == "int":
        kind = Integer(**bounds)
    else:
        kind = FiniteFloatRange(**bounds)
    return Addable(kind) if m["addable"] else kind


def config_options(*classes):
    """Decorator: one option per CLI field of the given config dataclasses, named after
    the field (its flag from config.flag), with the dataclass default."""
    from charrnn.config import flag, flag_duration

    def decorate(fn):
        fields = [f for cls in classes for f in dataclasses.fields(cls) if f.metadata["cli"]]
        for f in reversed(fields):
            default = flag_duration(f.default) if f.metadata["duration"] else f.default
            fn = click.option(
                flag(f.name), f.name, type=_click_type(f), default=default, show_default=True, help=f.metadata["help"]
            )(fn)
        return fn

    return decorate


def field_option(cls, name: str, *flags: str):
    """Decorator: the option ``flags`` for the field ``name`` of a config dataclass, with
    the field's help, default and allowed values (a flag for a bool field, any text for
    a text field)."""
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    if f.type == "bool":
        return click.option(*flags, name, is_flag=True, default=f.default, help=f.metadata["help"])
    if f.type in ("int", "float"):
        return click.option(
            *flags, name, type=_click_type(f), default=f.default, show_default=True, help=f.metadata["help"]
        )
    return click.option(*flags, name, default=f.default, help=f.metadata["help"])


def json_option(what: str):
    return click.option("--json", "as_json", is_flag=True, help=f"Print {what} as JSON on stdout.")


quiet_option = click.option("-q", "--quiet", is_flag=True, help="No progress bar, notes or log lines on stderr.")


engine_option = click.option(
    "--engine",
    type=click.Choice(engines.NAMES),
    default="auto",
    envvar=engines.ENV,
    show_default=True,
    show_envvar=True,
    help="What runs the cells: numba (compiled; pip install 'charrnn[fast]'), numpy, or auto: numba when it "
    "is installed. Results agree to float32 rounding.",
)


def load_engine(name: str, cell: str | None, report=None):
    """The engine ``--engine`` names, ready to run ``cell`` (None: not yet known);
    ``report`` (a function of one line, or None when quiet) hears why auto fell back
    to NumPy, and how long compiling took where it was slow."""
    engine = engines.get(name, note=report)
    if cell is not None:
        engines.warm_up(engine, cell, report)
    return engine


def encoding_option(default: str | None = "utf-8", help_extra: str = ""):
    return click.option(
        "--encoding", default=default, show_default=default is not None, help="Encoding of the text files." + help_extra
    )


checkpoint_option = click.option(
    "-c",
    "--checkpoint",
    "checkpoint_path",
    type=click.Path(),
    help="A checkpoint file, or a run directory (its best.npz) "
    "[default: the most recently written run under checkpoints/].",
)


def checkpoint_path_of(given: str | None, report=None, positional: str | None = None) -> str:
    """The checkpoint file --checkpoint (or the command's RUN argument) names, or the
    most recently written run's, which ``report`` (a function of one line, or None when
    quiet) names: after several trainings, "the latest" is easily not the one meant."""
    from charrnn import rundir

    if given is not None and positional is not None and given != positional:
        raise click.UsageError(f"two checkpoints given, {positional} and -c {given}: give one")
    given = given if given is not None else positional
    if given is not None:
        return rundir.resolve(given)
    path = rundir.resolve(rundir.latest_run())
    if report is not None:
        report(f"using {path}, the most recently written run (-c PATH chooses another)")
    return path
