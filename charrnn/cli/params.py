"""Click parameter types shared by the commands."""

from __future__ import annotations

import math

import click


class FiniteFloatRange(click.FloatRange):
    """click.FloatRange that also refuses nan and inf: nan passes every range comparison
    (nan <= 0 is False) and inf passes open-ended ones, so both would reach the library
    as valid values (--temperature nan samples garbage, --lr inf diverges)."""

    def convert(self, value, param, ctx):
        rv = super().convert(value, param, ctx)
        if not math.isfinite(rv):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return rv
