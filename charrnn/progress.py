"""What a training run shows while it runs, on stderr.

On a terminal, a bar: how far the run is towards its limit (--max-steps or
--time-limit, whichever comes first, as the learning-rate schedule counts it), the
training time against the budget and the time left, the mean training loss since
the last validation, the last validation loss and the speed. Anywhere else (a log
file, CI, a pipe) a bar cannot redraw itself, so the same status is a line every
LOG_SECONDS. A validation that takes a while gets its own bar, or its own lines.
"""

from __future__ import annotations

import time
from typing import Callable

from charrnn.config import TrainConfig, format_duration

LOG_SECONDS = 30.0  # without a terminal, a status line at least this often
REDRAW_SECONDS = 0.2  # the bar is redrawn at most this often
BAR_DELAY = 1.0  # a validation bar appears only once validating has taken this long


def fraction(cfg: TrainConfig, step: int, elapsed: float) -> float | None:
    """How far the run is towards the first of its limits (0..1), None without one."""
    parts = []
    if cfg.max_steps:
        parts.append(step / cfg.max_steps)
    if cfg.time_limit:
        parts.append(elapsed / cfg.time_limit)
    return min(1.0, max(parts)) if parts else None


def time_left(cfg: TrainConfig, step: int, elapsed: float, seconds_per_step: float | None) -> float | None:
    """Seconds until the first limit is reached, the step limit's estimated from
    ``seconds_per_step`` (validations included); None without a limit."""
    left = []
    if cfg.time_limit:
        left.append(max(0.0, cfg.time_limit - elapsed))
    if cfg.max_steps and seconds_per_step:
        left.append(max(0, cfg.max_steps - step) * seconds_per_step)
    return min(left) if left else None


def status(
    cfg: TrainConfig,
    step: int,
    elapsed: float,
    seconds_per_step: float | None,
    train_mean: float | None,
    last_val: float | None,
    rate: float,
) -> str:
    """One line: 'step 55 of 1,000  3m 42s of 10m, 6m 18s left  train 2.103  val 1.987  8,300 chars/s'."""
    where = f"step {step:,}" + (f" of {cfg.max_steps:,}" if cfg.max_steps else "")
    when = format_duration(elapsed) + (f" of {format_duration(cfg.time_limit)}" if cfg.time_limit else "")
    left = time_left(cfg, step, elapsed, seconds_per_step)
    if left is not None:
        when += f", {format_duration(left)} left"
    train = "-" if train_mean is None else f"{train_mean:.3f}"
    val = "-" if last_val is None else f"{last_val:.3f}"
    return f"{where}  {when}  train {train}  val {val}  {rate:,.0f} chars/s"


class Progress:
    """The run's status, shown as a bar (``terminal``) or as a line every LOG_SECONDS
    through ``report`` (a function of one line; a no-op when quiet)."""

    def __init__(self, cfg: TrainConfig, terminal: bool, report: Callable[[str], None]):
        from tqdm import tqdm

        self.cfg, self.terminal, self.report = cfg, terminal, report
        limited = bool(cfg.max_steps or cfg.time_limit)
        self.bar = tqdm(
            total=1000 if limited else None,
            bar_format="{percentage:3.0f}%|{bar}| {desc}" if limited else "{desc}",
            disable=not terminal,
            dynamic_ncols=True,
            leave=True,
        )
        self.drawn = self.logged = time.monotonic()

    def update(self, *args) -> None:
        """Show the status (``status``'s arguments after ``cfg``), when it is time to."""
        now = time.monotonic()
        if self.terminal:
            if now - self.drawn >= REDRAW_SECONDS:
                step, elapsed = args[0], args[1]
                share = fraction(self.cfg, step, elapsed)
                self.bar.n = 0 if share is None else int(share * 1000)
                self.bar.set_description_str(status(self.cfg, *args), refresh=False)
                self.bar.refresh()
                self.drawn = now
        elif now - self.logged >= LOG_SECONDS:
            self.report(status(self.cfg, *args))
            self.logged = now

    def write(self, line: str) -> None:
        """A line of the log, above the bar on a terminal."""
        if self.terminal:
            self.bar.write(line)
        else:
            self.report(line)
            self.logged = time.monotonic()

    def validating(self, total: int) -> Validating:
        return Validating(total, self.terminal, self.report)

    def close(self) -> None:
        self.bar.close()


class Validating:
    """Progress through one validation of ``total`` characters: a bar that appears once
    it has taken BAR_DELAY seconds, or a line every LOG_SECONDS without a terminal.
    Called with the characters scored so far."""

    def __init__(self, total: int, terminal: bool, report: Callable[[str], None]):
        self.total, self.terminal, self.report = total, terminal, report
        self.started = self.logged = time.monotonic()
        self.bar = None

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        if self.terminal:
            if self.bar is None and now - self.started >= BAR_DELAY:
                from tqdm import tqdm

                self.bar = tqdm(total=self.total, desc="validating", unit="char", unit_scale=True, leave=False)
            if self.bar is not None:
                self.bar.update(done - self.bar.n)
        elif now - self.logged >= LOG_SECONDS:
            share = done / max(self.total, 1)
            self.report(
                f"validating: {share:.0%} of {self.total:,} characters in {format_duration(now - self.started)}"
            )
            self.logged = now

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
