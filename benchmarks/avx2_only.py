"""Run a command with every library's AVX-512 code switched off: the AVX2 class, on an AVX-512 machine.

    python benchmarks/avx2_only.py python benchmarks/compare.py --corpus tinyshakespeare.txt --repeats 5
    python benchmarks/avx2_only.py python benchmarks/bench_eval.py --checkpoint RUN --rounds 3

On most laptops and many servers the CPU has AVX2 but not AVX-512, and the balance of
costs differs: NumPy's float32 tanh and exp, for one, have no AVX2 loop and run several
times slower there. This sets, for the command and everything it starts:

- NumPy: its AVX-512 dispatch targets disabled (``NPY_DISABLE_CPU_FEATURES``);
- OpenBLAS: the Haswell kernels (``OPENBLAS_CORETYPE``);
- numba: code generated for Haswell's instruction set (``NUMBA_CPU_NAME``, and the host's
  features with every AVX-512 and AMX one removed in ``NUMBA_CPU_FEATURES``); its cache
  keeps this code apart from the host's, so the first run compiles;
- PyTorch: ATen's AVX2 kernels, MKL's and oneDNN's AVX2 code paths.

It restricts the instruction set only: the cores, caches, clock and memory stay this
machine's, so figures measured this way estimate the AVX2 class and never replace a
measurement on an AVX2 CPU. ``compare.machine()`` reports what each library ran.
"""

from __future__ import annotations

import os
import sys

WIDE = ("avx512", "amx", "avx10")  # LLVM feature names of the vector extensions beyond AVX2

SETTINGS = {
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",  # NumPy 2's dispatch groups past AVX2
    "OPENBLAS_CORETYPE": "Haswell",
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
}


def numba_features() -> str | None:
    """The host's LLVM CPU features without AVX-512 and AMX, as NUMBA_CPU_FEATURES reads
    them; None without llvmlite. (NUMBA_CPU_NAME alone keeps the host's features.)"""
    try:
        import llvmlite.binding as llvm
    except ImportError:
        return None
    features = llvm.get_host_cpu_features()
    return ",".join(("+" if on and not name.startswith(WIDE) else "-") + name for name, on in features.items())


def numpy_avx512() -> bool | None:
    """Whether NumPy's loops dispatch to AVX-512 in this process (NPY_DISABLE_CPU_FEATURES,
    read when NumPy loads, can stop them); None where NumPy does not say."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:
        return None
    return bool(__cpu_features__.get("AVX512_SKX"))


def environment(base: dict[str, str]) -> dict[str, str]:
    env = {**base, **SETTINGS}
    features = numba_features()
    if features is not None:
        env["NUMBA_CPU_NAME"] = "haswell"
        env["NUMBA_CPU_FEATURES"] = features
    return env


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 2
    env = environment(dict(os.environ))
    try:
        os.execvpe(argv[0], argv, env)
    except OSError as exc:
        print(f"Error: cannot run {argv[0]}: {exc.strerror}", file=sys.stderr)
        return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
