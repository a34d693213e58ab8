"""Other tools' habits on charrnn's command line, and the one line that says what to type.

char-rnn's options take one dash (``-primetext``, ``-seed 123``, ``-rnn_size``) and
nanoGPT's use underscores (``--num_samples``). Click reads ``-primetext`` as the short
option ``-p`` with the value ``rimetext`` and ``-seed`` as ``-s eed`` (seed text
"eed"), so such a word either fails with a message about another option or, worse,
works and means something else. ``check`` looks at the words before Click parses
them and refuses those with a hint naming the charrnn option.
"""

from __future__ import annotations

import click

# char-rnn's (and nanoGPT's) option names -> what charrnn calls them; None: no equivalent
FOREIGN = {
    "primetext": "--seed (the text to start from)",
    "start": "--seed (the text to start from)",
    "seed": "--rng-seed (the random seed; --seed is the text to start from)",
    "length": "-n/--length",
    "max-new-tokens": "-n/--length",
    "num-samples": "--num-samples",
    "temperature": "-t/--temperature",
    "top-k": "-k/--top-k",
    "sample": "--greedy (for -sample 0)",
    "gpuid": None,
    "opencl": None,
    "device": None,
    "rnn-size": "--hidden-size",
    "n-embd": "--hidden-size",
    "num-layers": "--layers",
    "n-layer": "--layers",
    "model": "--cell",
    "learning-rate": "--lr",
    "seq-length": "--seq-len",
    "block-size": "--seq-len",
    "batch-size": "--batch-size",
    "max-epochs": "--max-steps or --time-limit",
    "max-iters": "--max-steps",
    "dropout": "--dropout",
    "grad-clip": "--clip",
    "eval-val-every": "--eval-every",
    "eval-interval": "--eval-every",
    "val-frac": "--val-frac",
    "checkpoint-dir": "--checkpoint-dir",
    "out-dir": "--checkpoint-dir",
    "data-dir": "the text file itself (charrnn train FILE)",
    "init-from": "--resume PATH (train) or -c PATH (sample)",
}


def _words(command: click.Command):
    """The option strings of ``command``, and those of them that take a value."""
    names, valued = set(), set()
    for param in command.params:
        if isinstance(param, click.Option):
            strings = [*param.opts, *param.secondary_opts]
            names.update(strings)
            if not param.is_flag and not param.count:
                valued.update(param.opts)
    return names, valued


def hint(command: click.Command, args: list[str]) -> str | None:
    """The usage error for the first word of ``args`` that is another tool's spelling of
    an option (see the module docstring), or None. Values of options are skipped, so
    ``--seed -primetext`` still starts from the text "-primetext"."""
    names, valued = _words(command)
    skip = False
    for word in args:
        if skip:
            skip = False
            continue
        if word == "--":
            return None
        if not word.startswith("-") or word == "-":
            continue
        name = word.split("=", 1)[0]
        if name in names:
            skip = name in valued and "=" not in word
            continue
        # an unknown --word, or one dash and more than one letter: short options with
        # their value (-n500, -sKING:) or a cluster of flags, unless another tool's option
        key = name.lstrip("-").lower().replace("_", "-")
        if key in FOREIGN:
            return _message(name, key, names)
        if "--" + key in names:
            return f"{name}: charrnn spells it --{key}"
    return None


def _message(word: str, key: str, names: set) -> str:
    meant = FOREIGN[key]
    if meant is None:
        return f"{word} is another tool's option; charrnn has no such setting (it runs on the CPU): leave it out"
    if "--" + key in names and meant.split(" ")[0].split("/")[-1] == "--" + key:
        return f"{word}: charrnn spells it --{key}"
    return f"{word} is another tool's option; in charrnn it is {meant}"
