"""Found for you: the units whose activation follows a text property most closely.

For every state series (trace.Series), unit and property (properties.PROPERTIES),
the Pearson correlation between the unit's activation and the property's value over
the characters where the property is defined. All units of a series are done in one
product: r = Xᵀy / (|X| |y|) with both sides centred. A unit that never moves (a dead
or saturated one) gets r = 0 rather than NaN.

A property the text barely shows says nothing about the units (a text with two
quoted words would crown whichever unit happened to be high there), so it needs at
least MIN_CASES characters on each side (yes-no properties) or MIN_CASES defined
values that are not all equal (counts); otherwise it is reported as absent, with the
reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from charrnn.vis.properties import PROPERTIES, Property
from charrnn.vis.trace import Series

MIN_CASES = 10
PER_PROPERTY = 3  # the best units listed for each property


@dataclass(frozen=True)
class Finding:
    series: int  # index into the trace's series
    unit: int
    prop: str  # Property.name
    r: float  # Pearson correlation, -1..1


@dataclass(frozen=True)
class Search:
    found: list[Finding]  # ranked by |r|, PER_PROPERTY per usable property
    absent: dict[str, str]  # property name -> why it could not rank units
    table: dict[str, list[np.ndarray]] = field(repr=False)  # property -> r (H,) of every unit, per series


def correlations(values: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Pearson r of each column of ``values`` (N,H) with ``target`` (N,), (H,) float64;
    rows where the target is NaN are left out; 0 for a constant column."""
    keep = ~np.isnan(target)
    X = values[keep].astype(np.float64)
    y = target[keep].astype(np.float64)
    X -= X.mean(axis=0)
    y -= y.mean()
    denom = np.sqrt((X * X).sum(axis=0) * (y @ y))
    num = X.T @ y
    return np.divide(num, denom, out=np.zeros_like(num), where=denom > 0)


def unusable(prop: Property, target: np.ndarray) -> str | None:
    """Why ``target`` cannot rank units (None: it can)."""
    defined = target[~np.isnan(target)]
    if prop.binary:
        yes = int(defined.sum())
        if min(yes, len(defined) - yes) < MIN_CASES:
            return f"true at {yes} of {len(defined)} characters; at least {MIN_CASES} either way are needed"
        return None
    if len(defined) < MIN_CASES:
        return f"defined at {len(defined)} characters; at least {MIN_CASES} are needed"
    if defined.min() == defined.max():
        return "the same at every character"
    return None


def rank(
    series: list[Series], text: str, per_property: int = PER_PROPERTY, properties: list[Property] = PROPERTIES
) -> Search:
    """Correlate every unit with every property the text shows enough of, and rank the
    ``per_property`` best units (by |r|, over all series) of each."""
    found, absent, table = [], {}, {}
    for prop in properties:
        target = prop.compute(text)
        reason = unusable(prop, target)
        if reason:
            absent[prop.name] = reason
            continue
        table[prop.name] = [correlations(s.values, target) for s in series]
        ranked = sorted(
            (
                (s, u)
                for s, r in enumerate(table[prop.name])
                for u in np.argsort(-np.abs(r), kind="stable")[:per_property]
            ),
            key=lambda su: -abs(table[prop.name][su[0]][su[1]]),
        )
        found += [Finding(s, int(u), prop.name, float(table[prop.name][s][u])) for s, u in ranked[:per_property]]
    found.sort(key=lambda f: -abs(f.r))
    return Search(found, absent, table)
