"""The numba engine's compiled kernels: each cell's step, forward and backward, as one
pass over its (H,B) block, and the elementwise work around the all-steps products.

Every kernel is the equation of the NumPy engine (engines/numpy_engine.py, whose
docstrings state them) written as loops, so that one pass computes what takes the
NumPy engine five to fifteen calls. The loops run over the B streams innermost, which
are contiguous, so LLVM vectorises them.

tanh is the one transcendental function of the recurrences (σ(x) = 0.5 tanh(x/2) + 0.5
with the σ rows pre-halved, as in the NumPy engine). In float32 it is a rational
approximation that vectorises (Eigen's float tanh: x P(x²) / Q(x²), the argument
clamped to ±7.9053); its error against float64 tanh is bounded by TANH_MAX_ERROR over
the whole float32 range and tested there (tests/test_engines.py). In float64, which
only the gradient checks use, it is libm's tanh: the kernels then compute the same
function as the NumPy engine to float64 rounding, so the checks test their equations.

Compilation options: ``error_model="numpy"`` lets a division vectorise (Python's error
model checks every divisor for zero); ``fastmath={"contract"}`` allows fused
multiply-adds only. The full fastmath set also assumes no NaN and no infinity, which
could turn a diverging NaN into a finite number and hide it from the divergence
guard; without it a NaN input gives a NaN output (tested). ``nogil`` lets the thread
shards (parallel.py) run kernels side by side. ``cache=True`` keeps the machine code
on disk (see engines/numba_engine.py for where).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange, types
from numba.extending import overload

OPTIONS = {"cache": True, "nogil": True, "error_model": "numpy", "fastmath": {"contract"}}

# Eigen's float tanh (Eigen/src/Core/MathFunctionsImpl.h): x P(x²) / Q(x²) on [-CLAMP, CLAMP]
_A = (
    4.89352455891786e-03,
    6.37261928875436e-04,
    1.48572235717979e-05,
    5.12229709037114e-08,
    -8.60467152213735e-11,
    2.00018790482477e-13,
    -2.76076847742355e-16,
)
_B = (4.89352518554385e-03, 2.26843463243900e-03, 1.18534705686654e-04, 1.19825839466702e-06)
CLAMP = 7.90531110763549805  # beyond it the rational function leaves [-1, 1]
SATURATE = 9.0  # float32 tanh(x) rounds to ±1 beyond about 9.01: return exactly ±1 there
TINY = 0.0004  # below it tanh(x) = x to within x²/3 < 2^-24 relative; the rational form loses bits on denormals
# The documented bound on the float32 approximation, tested over the whole float32 range
# (tests/test_engines.py): at most 4 units in the last place of 1.0 from float64 tanh,
# and within 4 units in the last place of the result relative to it. NaN stays NaN.
TANH_MAX_ERROR = 4 * 2.0**-23
TANH_MAX_REL_ERROR = 4 * 2.0**-23


def tanh_(x):
    """tanh for the kernels: the rational approximation in float32, libm's in float64."""
    return math.tanh(x)


@overload(tanh_, jit_options={"fastmath": {"contract"}, "error_model": "numpy"})
def _tanh_overload(x):
    if x != types.float32:
        return lambda x: math.tanh(x)
    a0, a1, a2, a3, a4, a5, a6 = (np.float32(c) for c in _A)
    b0, b1, b2, b3 = (np.float32(c) for c in _B)
    hi, lo, sat, tiny = np.float32(CLAMP), np.float32(-CLAMP), np.float32(SATURATE), np.float32(TINY)
    one = np.float32(1.0)

    def tanh32(x):
        y = x
        if y > hi:  # written as comparisons, not min/max: a NaN fails both and stays NaN
            y = hi
        elif y < lo:
            y = lo
        y2 = y * y
        p = y2 * a6 + a5
        p = y2 * p + a4
        p = y2 * p + a3
        p = y2 * p + a2
        p = y2 * p + a1
        p = y2 * p + a0
        q = y2 * b3 + b2
        q = y2 * q + b1
        q = y2 * q + b0
        r = y * p / q
        if x > sat:
            r = one
        elif x < -sat:
            r = -one
        elif x < tiny and x > -tiny:
            r = x
        return r

    return tanh32


@njit(**OPTIONS)
def tanh_array(x, out):
    """out = tanh_(x) elementwise, for 1-d arrays (the approximation's tests)."""
    for i in range(x.shape[0]):
        out[i] = tanh_(x[i])


# ------------------------------------------------------------------ cell equations
#
# One unit of one cell for one stream, from its pre-activations (σ rows halved): the
# equations every kernel below applies, training's, the K streams' and one stream's.
# ``half`` is 0.5 in the arrays' type, so that float32 stays float32.


@njit(**OPTIONS, inline="always")
def lstm_cell(ai, af, ao, ag, c_prev, half):
    """(i, f, o, g, c, h): i,f,o = σ, g = tanh; c = f c_prev + i g; h = o tanh(c)."""
    i = half * tanh_(ai) + half
    f = half * tanh_(af) + half
    o = half * tanh_(ao) + half
    g = tanh_(ag)
    c = f * c_prev + i * g
    return i, f, o, g, c, o * tanh_(c)


@njit(**OPTIONS, inline="always")
def gru_cell(ar, az, an, u, h_prev, half):
    """(r, z, n, h): r,z = σ; n = tanh(an + r u); h = n + z (h_prev - n)."""
    r = half * tanh_(ar) + half
    z = half * tanh_(az) + half
    n = tanh_(an + r * u)
    return r, z, n, n + z * (h_prev - n)


# ------------------------------------------------------------------ recurrences
#
# Training arrays are (T,F,B), step t's block contiguous: Z/A (T,G,B) the input
# pre-activations, overwritten with the gate activations and then their gradients; hs
# and cs (T+1,H,B) with entry 0 the carried state. hW (G,B) is this step's recurrent
# product Wh^T h_{t-1} (σ rows halved), made by a BLAS call between kernels. Passing
# whole arrays and t costs less per call than passing the step's slices.


@njit(**OPTIONS)
def rnn_forward_step(Z, hW, hs, t):
    """h_t = tanh(Z[t] + hW)."""
    _, H, B = hs.shape
    for j in range(H):
        for b in range(B):
            hs[t + 1, j, b] = tanh_(Z[t, j, b] + hW[j, b])


@njit(**OPTIONS)
def rnn_backward_step(dH, dh_next, hs, t):
    """dH[t] becomes da_t = (dH[t] + dh_next) * (1 - h_t²)."""
    _, H, B = dH.shape
    one = hs.dtype.type(1.0)
    for j in range(H):
        for b in range(B):
            h = hs[t + 1, j, b]
            dH[t, j, b] = (dH[t, j, b] + dh_next[j, b]) * (one - h * h)


@njit(**OPTIONS)
def lstm_forward_step(Z, hW, cs, hs, t):
    """Z[t] + hW -> gates [i,f,o,g] (written over Z[t]); c_t = f c_{t-1} + i g;
    h_t = o tanh(c_t)."""
    _, H, B = hs.shape
    half = hs.dtype.type(0.5)
    for j in range(H):
        for b in range(B):
            i, f, o, g, c, h = lstm_cell(
                Z[t, j, b] + hW[j, b],
                Z[t, H + j, b] + hW[H + j, b],
                Z[t, 2 * H + j, b] + hW[2 * H + j, b],
                Z[t, 3 * H + j, b] + hW[3 * H + j, b],
                cs[t, j, b],
                half,
            )
            Z[t, j, b] = i
            Z[t, H + j, b] = f
            Z[t, 2 * H + j, b] = o
            Z[t, 3 * H + j, b] = g
            cs[t + 1, j, b] = c
            hs[t + 1, j, b] = h


@njit(**OPTIONS)
def lstm_backward_step(dH, dh_next, dc, A, cs, t):
    """From the gates A[t] and dh_t = dH[t] + dh_next, write da_t over A[t] and carry
    dc (in: dc_{t+1} f_{t+1}, out: dc_t f_t)::

        do = dh tanh(c_t)            dc = dc + dh o (1 - tanh²(c_t))
        di = dc g,  df = dc c_{t-1},  dg = dc i
        da = [di i(1-i), df f(1-f), do o(1-o), dg (1-g²)]
    """
    _, H, B = dH.shape
    one = dH.dtype.type(1.0)
    for j in range(H):
        for b in range(B):
            i = A[t, j, b]
            f = A[t, H + j, b]
            o = A[t, 2 * H + j, b]
            g = A[t, 3 * H + j, b]
            dh = dH[t, j, b] + dh_next[j, b]
            tc = tanh_(cs[t + 1, j, b])
            d_c = dc[j, b] + dh * o * (one - tc * tc)
            A[t, j, b] = d_c * g * i * (one - i)
            A[t, H + j, b] = d_c * cs[t, j, b] * f * (one - f)
            A[t, 2 * H + j, b] = dh * tc * o * (one - o)
            A[t, 3 * H + j, b] = d_c * i * (one - g * g)
            dc[j, b] = d_c * f


@njit(**OPTIONS)
def gru_forward_step(Z, hW, bhn, hs, us, t):
    """[r, z] = σ(Z[t] + hW) over the first 2H rows; u_t = hW_n + bhn (kept in us[t]);
    n = tanh(Z_n[t] + r u_t); h_t = (1 - z) n + z h_{t-1}. Z[t] becomes [r, z, n]."""
    _, H, B = hs.shape
    half = hs.dtype.type(0.5)
    for j in range(H):
        bias = bhn[j]
        for b in range(B):
            u = hW[2 * H + j, b] + bias
            r, z, n, h = gru_cell(
                Z[t, j, b] + hW[j, b], Z[t, H + j, b] + hW[H + j, b], Z[t, 2 * H + j, b], u, hs[t, j, b], half
            )
            Z[t, j, b] = r
            Z[t, H + j, b] = z
            Z[t, 2 * H + j, b] = n
            us[t, j, b] = u
            hs[t + 1, j, b] = h


@njit(**OPTIONS)
def gru_backward_step(dH, mm, carry, A, hs, us, dR, t):
    """dh_t = dH[t] + mm + carry, where mm = Wh dR_{t+1} (the BLAS call before) and carry
    = dh_{t+1} z_{t+1} (this kernel's, one step earlier). Writes dZx[t] = [da_r, da_z,
    da_n] over A[t], dR[t] = [da_r, da_z, du], and carry = dh_t z::

        da_n = dh (1 - z)(1 - n²),  du = da_n r,  da_r = da_n u r (1 - r)
        da_z = dh (h_{t-1} - n) z (1 - z)
    """
    _, H, B = dH.shape
    one = dH.dtype.type(1.0)
    for j in range(H):
        for b in range(B):
            r = A[t, j, b]
            z = A[t, H + j, b]
            n = A[t, 2 * H + j, b]
            dh = dH[t, j, b] + mm[j, b] + carry[j, b]
            dan = dh * (one - z) * (one - n * n)
            dar = dan * us[t, j, b] * r * (one - r)
            daz = dh * (hs[t, j, b] - n) * z * (one - z)
            A[t, j, b] = dar
            A[t, H + j, b] = daz
            A[t, 2 * H + j, b] = dan
            dR[t, j, b] = dar
            dR[t, H + j, b] = daz
            dR[t, 2 * H + j, b] = dan * r
            carry[j, b] = dh * z


@njit(**OPTIONS)
def embed(tableT, X, Z):
    """Z[t, :, b] = tableT[:, X[t, b]]: the first layer's input pre-activations, a column
    of the (G,V) table per position, written in the (T,G,B) layout the cells read."""
    T, G, B = Z.shape
    for t in range(T):
        for g in range(G):
            for b in range(B):
                Z[t, g, b] = tableT[g, X[t, b]]


# -------------------------------------------------------------------- optimizer


@njit(**OPTIONS)
def adam_update(p, g, m, v, b1, b2, step, denom_scale, eps):
    """optim.update's Adam for one parameter, in one pass instead of a dozen: m = b1 m +
    (1-b1) g; v = b2 v + (1-b2) g²; p -= step m / (sqrt(v) denom_scale + eps). The
    scalars are rounded to the arrays' type first, as NumPy does with Python floats."""
    P, G, M, W = p.reshape(p.size), g.reshape(g.size), m.reshape(m.size), v.reshape(v.size)
    t = p.dtype.type
    b1, b2, c1, c2 = t(b1), t(b2), t(1.0 - b1), t(1.0 - b2)
    step, denom_scale, eps = t(step), t(denom_scale), t(eps)
    for i in range(P.shape[0]):
        gi = G[i]
        mi = M[i] * b1 + c1 * gi
        vi = W[i] * b2 + c2 * (gi * gi)
        M[i] = mi
        W[i] = vi
        P[i] -= step * mi / (math.sqrt(vi) * denom_scale + eps)


# ------------------------------------------------------------------- generation
#
# The K-stream stepper's elementwise steps: a (G,K) holds the complete pre-activation
# (the GRU: Zx, with hW = Wh^T h apart), states are (H,K), updated in place.


@njit(**OPTIONS)
def rnn_gen_step(a, h):
    H, K = h.shape
    for j in range(H):
        for k in range(K):
            h[j, k] = tanh_(a[j, k])


@njit(**OPTIONS)
def lstm_gen_step(a, h, c):
    H, K = h.shape
    half = h.dtype.type(0.5)
    for j in range(H):
        for k in range(K):
            _, _, _, _, c[j, k], h[j, k] = lstm_cell(
                a[j, k], a[H + j, k], a[2 * H + j, k], a[3 * H + j, k], c[j, k], half
            )


@njit(**OPTIONS)
def gru_gen_step(a, hW, bhn, h):
    H, K = h.shape
    half = h.dtype.type(0.5)
    for j in range(H):
        for k in range(K):
            ar, az, u = a[j, k] + hW[j, k], a[H + j, k] + hW[H + j, k], hW[2 * H + j, k] + bhn[j, 0]
            _, _, _, h[j, k] = gru_cell(ar, az, a[2 * H + j, k], u, h[j, k], half)


# ------------------------------------------------------------- one stream
#
# One stream's whole step, per character, in one call: every layer, the output layer
# and the draw. Its cost is reading the weights once per character, so each layer is
# one parallel loop over its H units that reads the rows of all of a unit's gates
# (rows j, H+j, ... of W) and updates the unit; with the loop's static schedule each
# of the CPU's cores reads the same rows every character, which stay in its own
# cache. A layer reads its input (the layer below, this character) and its own state
# (the previous character) from h_new and h_old, two buffers the caller swaps, since
# a parallel loop must not overwrite what another iteration still reads.
#
#   rows (V,G)       layer 0's input part: row x of its table, bias included
#   Wx (L-1,G,H)     each layer above: Wx^T, with bias b (L-1,G)
#   Wh (L,G,H)       every layer's Wh^T
#   Wy (V,H), by (V,)  the output layer, temperature folded in
# σ rows are halved, as everywhere. ``reassoc`` lets the dot products vectorise.

STREAM_OPTIONS = {**OPTIONS, "parallel": True, "fastmath": {"contract", "reassoc"}}


@njit(**STREAM_OPTIONS)
def _lstm_layer(Wx, x, Wh, h_prev, bias, bhn, c, h):
    """c, h (H,) of one LSTM layer from its input x (K,) (K = 0: all in bias) and h_prev."""
    H, K = h.shape[0], x.shape[0]
    half = h.dtype.type(0.5)
    for j in prange(H):
        a0, a1, a2, a3 = bias[j], bias[H + j], bias[2 * H + j], bias[3 * H + j]
        for i in range(K):
            xi = x[i]
            a0 += Wx[j, i] * xi
            a1 += Wx[H + j, i] * xi
            a2 += Wx[2 * H + j, i] * xi
            a3 += Wx[3 * H + j, i] * xi
        for i in range(H):
            hi = h_prev[i]
            a0 += Wh[j, i] * hi
            a1 += Wh[H + j, i] * hi
            a2 += Wh[2 * H + j, i] * hi
            a3 += Wh[3 * H + j, i] * hi
        _, _, _, _, c[j], h[j] = lstm_cell(a0, a1, a2, a3, c[j], half)


@njit(**STREAM_OPTIONS)
def _rnn_layer(Wx, x, Wh, h_prev, bias, bhn, c, h):
    H, K = h.shape[0], x.shape[0]
    for j in prange(H):
        a = bias[j]
        for i in range(K):
            a += Wx[j, i] * x[i]
        for i in range(H):
            a += Wh[j, i] * h_prev[i]
        h[j] = tanh_(a)


@njit(**STREAM_OPTIONS)
def _gru_layer(Wx, x, Wh, h_prev, bias, bhn, c, h):
    """The n gate keeps its input and recurrent sums apart: n = tanh(Wx_n x + b_n +
    r (Wh_n h + bhn))."""
    H, K = h.shape[0], x.shape[0]
    half = h.dtype.type(0.5)
    for j in prange(H):
        r, z, nx, nh = bias[j], bias[H + j], bias[2 * H + j], bhn[j]
        for i in range(K):
            xi = x[i]
            r += Wx[j, i] * xi
            z += Wx[H + j, i] * xi
            nx += Wx[2 * H + j, i] * xi
        for i in range(H):
            hi = h_prev[i]
            r += Wh[j, i] * hi
            z += Wh[H + j, i] * hi
            nh += Wh[2 * H + j, i] * hi
        _, _, _, h[j] = gru_cell(r, z, nx, nh, h_prev[j], half)


@njit(**{**STREAM_OPTIONS, "parallel": False})
def _output(Wy, by, h, logits):
    """logits = Wy h + by; a few dozen rows: one core reads them faster than two start."""
    V, H = Wy.shape
    for v in range(V):
        a = by[v]
        for i in range(H):
            a += Wy[v, i] * h[i]
        logits[v] = a


@njit(**OPTIONS)
def _argmax(x):
    best = 0
    for i in range(1, x.shape[0]):
        if x[i] > x[best]:
            best = i
    return best


@njit(**OPTIONS)
def pick(row, noise, top_k, top_p, greedy):
    """sampling._Picker.one, compiled: the Gumbel-max draw from softmax(row) (V,)
    float32 with noise (V,) float64, after top-k and top-p; the same arithmetic in the
    same types as sampling.keep_mask."""
    best_logit = _argmax(row)
    if greedy:
        return best_logit
    V = row.shape[0]
    z = np.empty(V, dtype=np.float64)
    for v in range(V):
        z[v] = row[v] + noise[v]
    best = _argmax(z)
    if best == best_logit:  # every filter keeps the most likely character
        return best
    keep = np.ones(V, dtype=np.bool_)
    if 0 < top_k < V:
        # the top_k-th largest value, as keep_mask's np.partition finds it: a sort gives the
        # same value, and numba compiles a sort (which top-p needs anyway) far faster than
        # a partition, on a machine's first run (benchmarks/RESULTS.md, Start-up)
        kth = np.sort(row)[V - top_k]
        for v in range(V):
            keep[v] = row[v] >= kth
    if top_p < 1:
        m = -np.inf
        for v in range(V):
            if keep[v] and row[v] > m:
                m = row[v]
        p = np.empty(V, dtype=row.dtype)
        for v in range(V):
            p[v] = np.exp(row[v] - m) if keep[v] else row.dtype.type(0.0)
        # keep_mask keeps character j unless the characters no likelier than j hold at
        # most (1 - top_p) of the mass. Where that sum is clearly above the threshold
        # (beyond any float32 rounding of the sorted sums), the winner is kept: no sort.
        below, total = 0.0, 0.0
        for v in range(V):
            total += p[v]
            if p[v] <= p[best]:
                below += p[v]
        if keep[best] and below > (1.0 - top_p) * total * (1.0 + 1e-4) + 1e-30:
            return best
        ranked = np.sort(p)
        tail = np.cumsum(ranked)
        least = ranked[np.searchsorted(tail, row.dtype.type(1.0 - top_p) * tail[-1], side="right")]
        for v in range(V):
            keep[v] = keep[v] and p[v] >= least
    if keep[best]:
        return best
    for v in range(V):
        if not keep[v]:
            z[v] = -np.inf
    return _argmax(z)


@njit(**OPTIONS)
def stream_step(cell, rows, Wx, Wh, b, bhn, Wy, by, h_old, h_new, c, x, logits, noise, top_k, top_p, greedy):
    """Read character x and draw the next: every layer (cell 0 rnn, 1 lstm, 2 gru), the
    logits (written to ``logits``) and the draw. h_new (L,H) receives the new states
    from h_old (L,H); c (L,H) is the LSTM's cell state, updated in place."""
    L, H = h_old.shape
    none = np.empty((Wh.shape[1], 0), dtype=Wh.dtype)  # layer 0 has no input product
    for k in range(L):
        if k == 0:
            Wxk, inp, bias = none, h_new[0, :0], rows[x]
        else:
            Wxk, inp, bias = Wx[k - 1], h_new[k - 1], b[k - 1]
        if cell == 1:
            _lstm_layer(Wxk, inp, Wh[k], h_old[k], bias, bhn[k], c[k], h_new[k])
        elif cell == 2:
            _gru_layer(Wxk, inp, Wh[k], h_old[k], bias, bhn[k], c[k], h_new[k])
        else:
            _rnn_layer(Wxk, inp, Wh[k], h_old[k], bias, bhn[k], c[k], h_new[k])
    _output(Wy, by, h_new[L - 1], logits)
    return pick(logits, noise, top_k, top_p, greedy)


@njit(**OPTIONS)
def stream_run(cell, rows, Wx, Wh, b, bhn, Wy, by, h, h2, c, x, logits, noise, top_k, top_p, greedy, stop, recent, out):
    """Up to len(out) characters of one stream, from character x: stream_step after
    stream_step, the i-th with noise[i] (greedy: no noise). ``recent`` (len(stop),)
    holds the last ids drawn (-1 where none yet) and is kept up to date; the run ends
    early, after the character that completes ``stop`` (ids; empty: never). Returns how
    many were drawn into ``out``; the state ends in h (h2 is scratch)."""
    n, S = out.shape[0], stop.shape[0]
    a, z = h, h2
    count = 0
    while count < n:
        x = stream_step(cell, rows, Wx, Wh, b, bhn, Wy, by, a, z, c, x, logits, noise[count], top_k, top_p, greedy)
        a, z = z, a
        out[count] = x
        count += 1
        if S:
            for s in range(S - 1):
                recent[s] = recent[s + 1]
            recent[S - 1] = x
            done = True
            for s in range(S):
                if recent[s] != stop[s]:
                    done = False
            if done:
                break
    if count % 2 == 1:
        h[:] = h2
    return count
