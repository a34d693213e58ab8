"""Cold starts: how much worse a model predicts the first characters it reads from the
fresh state (as sampling starts) than the same characters with a long context.

Measured at every validation and by `charrnn eval` (``measure``), kept in checkpoints and
metrics.jsonl under KEYS, shown by `charrnn info` (``line``) and `charrnn eval
--cold-start`. docs/cold-starts.md says why it is measured and what was tried.
"""

from __future__ import annotations

import numpy as np

from charrnn import evaluation, model

WINDOWS = 300  # windows at random positions of the scored text, each from a fresh state
CHARS = 64  # characters scored in each window
SEED = 0  # the same windows at every evaluation of the same text
SPANS = (16, CHARS)  # reported over characters 0-15 and 0-63 of the windows
KEYS = ("cold_0_15", "warm_0_15", "cold_0_63", "warm_0_63")  # (cold, warm) for each span, in order
COLUMNS = ("cold16", "warm16", "cold64", "warm64")  # KEYS as `charrnn eval --cold-start` heads them


def measure(
    params,
    cfg,
    ids: np.ndarray,
    n_context: int,
    warm: np.ndarray,
    windows: int = WINDOWS,
    seed: int = SEED,
    engine=None,
) -> dict | None:
    """How much worse the model predicts the first characters after a fresh state.

    Windows of CHARS characters start at random positions of ids[n_context:]; each
    is read from the state generation starts from (model.init_hidden), its first input
    being the character just before the window. ``warm`` (char_losses of the same ids)
    gives the same characters' losses with the long context of ordinary scoring.
    Returns mean nats/char by KEYS, or None for a text shorter than one window."""
    n_targets = len(ids) - n_context
    if n_targets < CHARS:
        return None
    starts = np.random.default_rng(seed).integers(0, n_targets - CHARS + 1, size=windows)
    offsets = np.arange(CHARS)
    x = ids[n_context - 1 + starts[:, None] + offsets]  # (W,C): inputs
    y = ids[n_context + starts[:, None] + offsets]  # (W,C): the window's characters
    cold = np.empty((windows, CHARS))
    width = evaluation.call_width(cfg)
    group = evaluation.scoring_streams(width, windows)
    for w in range(0, windows, group):
        rows = slice(w, w + group)
        state = model.init_hidden(cfg, len(cold[rows]), params["Why"].dtype)
        step = evaluation.chunk_steps(width, len(cold[rows]))
        for t in range(0, CHARS, step):
            cols = slice(t, t + step)
            cold[rows, cols], state = model.sequence_nll(params, cfg, x[rows, cols], y[rows, cols], state, engine)
    hot = warm[starts[:, None] + offsets]
    values = [float(losses[:, :n].mean()) for n in SPANS for losses in (cold, hot)]
    return dict(zip(KEYS, values))


def line(cold: dict) -> str:
    """A measurement in one line, as `charrnn info` shows it."""
    return (
        f"chars 0-15 {cold['cold_0_15']:.4f} from a fresh state against {cold['warm_0_15']:.4f} warm, "
        f"0-63 {cold['cold_0_63']:.4f} against {cold['warm_0_63']:.4f} (nats/char, last validation)"
    )
