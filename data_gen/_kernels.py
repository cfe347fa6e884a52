"""The numba kernels of data_gen.compiled (imported only from there, only when it is used).

Objects come as tuples of arrays, as data_gen.compiled builds them:

* cells: (centre_y, centre_x, radius, amplitude, valid, stamps, starts, spans, rmax); the
  (B, K) tensors of ``Cells``, then the course stamps of radii 1..rmax end to end (stamp r
  from starts[r], (2r - 1)**2 values) and spans[r, i], the columns [lo, hi) of row i of stamp r
  inside the disc;
* rectangles: (top, left, height, width, value, valid, key, rank, longest, noise, offsets); the
  (B, K) tensors of ``Rects``, each rectangle's shape group and its rank in the group
  (``groups``), each group's largest sides, and for noisy rectangles the standard normals of
  each group's (size, P, Q) patches end to end, group g from offsets[g].

Images are drawn one at a time, ``first`` to ``stop - 1`` (so threads can share a batch), and
every loop clips to the image, so no argument makes a kernel write outside its output (bounds
checks are off for speed). Indices are unsigned where it matters: numba then skips the
negative-index test on every access, which halves the discs' time.
"""

import numba
import numpy as np
from llvmlite import ir
from numba import types, uint64
from numba.extending import intrinsic

_jit = numba.njit(cache=True, nogil=True, boundscheck=False)


@_jit
def still(clean, out, cells, filled, noisy, draw_cells, copy_filled, add_noisy, first, stop):
    """The generator's stages for images first..stop - 1 of ``clean`` and ``out`` (B, H, W),
    each image while it is in cache: ``draw_cells``: clean = 0 + cells; ``copy_filled``: out =
    clean + filled rectangles; ``add_noisy``: out += noisy rectangles."""
    batch, height, width = out.shape
    pixels = height * width
    source, flat = clean.reshape(-1), out.reshape(-1)
    for b in range(max(first, 0), min(stop, batch)):
        at = uint64(b * pixels)
        if draw_cells:
            for j in range(uint64(pixels)):
                source[at + j] = 0
            _discs_into(source, b, height, width, cells)
        if copy_filled:
            for j in range(uint64(pixels)):
                flat[at + j] = source[at + j]
            _rects_into(flat, b, height, width, filled, False)
        if add_noisy:
            _rects_into(flat, b, height, width, noisy, True)


@_jit
def discs(out, cells, first, stop):
    """Add cells into images first..stop - 1 of ``out`` (B, H, W)."""
    batch, height, width = out.shape
    flat = out.reshape(-1)
    for b in range(max(first, 0), min(stop, batch)):
        _discs_into(flat, b, height, width, cells)


@_jit
def rects(out, rects, pixel_noise, first, stop):
    """Add rectangles into images first..stop - 1 of ``out`` (B, H, W)."""
    batch, height, width = out.shape
    flat = out.reshape(-1)
    for b in range(max(first, 0), min(stop, batch)):
        _rects_into(flat, b, height, width, rects, pixel_noise)


@_jit
def _discs_into(flat, b, height, width, cells):
    """Add the cells of image b into ``flat`` (the batch, flattened) in (radius, slot) order,
    each pixel amplitude * stamp, as the torch path adds them. The order is listed first, then
    the discs drawn, each row's additions inline: faster than drawing inside the (radius,
    slot) loops through a helper per row."""
    cy, cx, radius, amp, valid, stamps, starts, spans, rmax = cells
    slots = valid.shape[1]
    order = np.empty(slots, np.int64)
    n = 0
    for r in range(1, rmax + 1):
        for k in range(slots):
            if valid[b, k] and radius[b, k] == r:
                order[n] = k
                n += 1
    for t in range(n):
        k = order[t]
        r = radius[b, k]
        p = 2 * r - 1
        a = amp[b, k]
        y0 = cy[b, k] - (r - 1)
        x0 = cx[b, k] - (r - 1)
        for i in range(max(0, -y0), min(p, height - y0)):
            lo = max(spans[r, i, 0], -x0)
            hi = min(spans[r, i, 1], width - x0)
            if hi > lo:
                at = uint64((b * height + y0 + i) * width + x0 + lo)
                start = uint64(starts[r] + i * p + lo)
                for j in range(uint64(hi - lo)):
                    flat[at + j] += a * stamps[start + j]


@_jit
def _rects_into(flat, b, height, width, rects, pixel_noise):
    """Add the rectangles of image b into ``flat`` (the batch, flattened) in (group, slot)
    order, as the torch path adds them: each pixel ``value``, or ``max(0, n) * value`` with n
    from ``noise``, rectangle ``rank`` of group g owning the (P, Q) block from offsets[g] +
    rank * P * Q, (P, Q) = longest[g]."""
    top, left, h, w, value, valid, key, rank, longest, noise, offsets = rects
    zero = noise.dtype.type(0)
    for g in range(4):
        q = longest[g, 1]
        for k in range(valid.shape[1]):
            if not valid[b, k] or key[b, k] != g:
                continue
            v = value[b, k]
            y0, x0 = top[b, k], left[b, k]
            lo = max(0, -x0)
            hi = min(w[b, k], width - x0)
            if hi <= lo:
                continue
            base = offsets[g] + rank[b, k] * longest[g, 0] * q
            n = uint64(hi - lo)
            for i in range(max(0, -y0), min(h[b, k], height - y0)):
                at = uint64((b * height + y0 + i) * width + x0 + lo)
                if pixel_noise:   # max(0, x) * v: where x <= 0 that adds 0, which changes nothing
                    start = uint64(base + i * q + lo)
                    for j in range(n):
                        flat[at + j] += max(noise[start + j], zero) * v
                else:
                    for j in range(n):
                        flat[at + j] += v


@_jit
def groups(h, w, valid):
    """Shape group of each rectangle (as data_gen.rendering._rect_groups), its rank in the
    group in (image, slot) order, and each group's size and largest sides."""
    h_lo, h_hi, w_lo, w_hi = 1 << 62, -(1 << 62), 1 << 62, -(1 << 62)
    batch, slots = valid.shape
    for b in range(batch):
        for k in range(slots):
            if valid[b, k]:
                h_lo, h_hi = min(h_lo, h[b, k]), max(h_hi, h[b, k])
                w_lo, w_hi = min(w_lo, w[b, k]), max(w_hi, w[b, k])
    h_mid, w_mid = (h_lo + h_hi) // 2, (w_lo + w_hi) // 2
    key = np.zeros((batch, slots), np.int64)
    rank = np.zeros((batch, slots), np.int64)
    sizes = np.zeros(4, np.int64)
    longest = np.zeros((4, 2), np.int64)
    for b in range(batch):
        for k in range(slots):
            if valid[b, k]:
                g = (2 if h[b, k] > h_mid else 0) + (1 if w[b, k] > w_mid else 0)
                key[b, k] = g
                rank[b, k] = sizes[g]
                sizes[g] += 1
                longest[g, 0] = max(longest[g, 0], h[b, k])
                longest[g, 1] = max(longest[g, 1], w[b, k])
    return key, rank, sizes, longest


# ---------------------------------------------------------------- sampling arithmetic
# The samplers (data_gen.sampling) draw their random numbers with torch; these kernels do the
# arithmetic that turns the draws into object parameters, with the same float and integer
# operations as the torch code (float32 products stay float32: each operand is cast through a
# one-element array of the draw's dtype, as torch casts a scalar or an int64 tensor).


@_jit
def slots(counts):
    """K = the largest count, and the (n, K) mask of slots in use."""
    k = 0
    for c in counts:
        k = max(k, c)
    valid = np.zeros((counts.shape[0], k), np.bool_)
    for b in range(counts.shape[0]):
        for j in range(counts[b]):
            valid[b, j] = True
    return valid


@_jit
def between(lo, hi, u):
    """Uniform integers in [lo, hi] from uniforms u: lo + min(int(u * span), span - 1), span =
    hi - lo + 1, u * span in u's float type (as data_gen.sampling._randint_between)."""
    out = np.empty(lo.shape, np.int64)
    cast = np.empty(1, u.dtype)
    flat_lo, flat_hi, flat_u, flat_out = lo.ravel(), hi.ravel(), u.ravel(), out.reshape(-1)
    for i in range(flat_out.shape[0]):
        span = flat_hi[i] - flat_lo[i] + 1
        cast[0] = span
        flat_out[i] = flat_lo[i] + min(np.int64(flat_u[i] * cast[0]), span - 1)
    return out


@_jit
def uniform(lo, hi, u):
    """lo + (hi - lo) * u, in u's float type (as data_gen.sampling._uniform), in place."""
    cast = np.empty(2, u.dtype)
    cast[0] = hi - lo
    cast[1] = lo
    flat = u.reshape(-1)
    for i in range(flat.shape[0]):
        flat[i] = cast[1] + cast[0] * flat[i]
    return u


@_jit
def centres(r, size, u):
    """Centres uniform in [r, size - r] (bounds swapped when that is empty), as sample_cells."""
    return between(np.minimum(r, size - r), np.maximum(r, size - r), u)


@_jit
def place(h, w, height, width, u_top, u_left):
    """Sides cut to the image, and top-left corners uniform so the rectangles fit (as
    data_gen.sampling._place_rects); returns (top, left, h, w)."""
    h = np.minimum(h, height)
    w = np.minimum(w, width)
    top = between(np.zeros_like(h), height - h, u_top)
    left = between(np.zeros_like(w), width - w, u_left)
    return top, left, h, w


# ---------------------------------------------------------------- torch's CPU random stream
# torch's CPU generator is a 32-bit Mersenne Twister (at::mt19937): ``left`` counts down the
# words still unread before the state is twisted, ``next`` is the next word to read. These
# kernels draw from a copy of that state (data_gen.compiled.Stream) the values torch's CPU
# samplers give, with the same integer and float arithmetic, so a batch's few dozen small
# draws cost one kernel call each instead of a torch call and its dispatch.

_MT_N, _MT_M = 624, 397
_UPPER, _LOWER, _MATRIX = np.uint32(0x80000000), np.uint32(0x7fffffff), np.uint32(0x9908b0df)


@_jit
def _mt_twist(st):
    """at::mt19937::next_state on the 624 words ``st`` (uint32), in place."""
    n, m = _MT_N, _MT_M
    for i in range(n - m):
        y = (st[i] & _UPPER) | (st[i + 1] & _LOWER)
        st[i] = st[i + m] ^ (y >> np.uint32(1)) ^ (_MATRIX * (st[i + 1] & np.uint32(1)))
    for i in range(n - m, n - 1):
        y = (st[i] & _UPPER) | (st[i + 1] & _LOWER)
        st[i] = st[i + m - n] ^ (y >> np.uint32(1)) ^ (_MATRIX * (st[i + 1] & np.uint32(1)))
    y = (st[n - 1] & _UPPER) | (st[0] & _LOWER)
    st[n - 1] = st[m - 1] ^ (y >> np.uint32(1)) ^ (_MATRIX * (st[0] & np.uint32(1)))


@_jit
def _mt_words(st, pos, raw):
    """``raw.shape[0]`` 32-bit draws (at::mt19937's operator(): count ``left`` down, twist at
    0, then read and temper word ``next``) into ``raw``; pos = [left, next], updated. The
    draws between two twists are read and tempered as one block."""
    left, nxt = pos[0], pos[1]
    n, i = raw.shape[0], 0
    while i < n:
        if left == 1:   # the next draw twists, then reads word 0
            _mt_twist(st)
            left, nxt = _MT_N + 1, 0
        m = min(n - i, left - 1)
        for j in range(m):
            y = st[nxt + j]
            y ^= y >> np.uint32(11)
            y ^= (y << np.uint32(7)) & np.uint32(0x9d2c5680)
            y ^= (y << np.uint32(15)) & np.uint32(0xefc60000)
            y ^= y >> np.uint32(18)
            raw[i + j] = y
        i += m
        nxt += m
        left -= m
    pos[0], pos[1] = left, nxt


@_jit
def stream_rand32(st, pos, out):
    """torch.rand on the CPU, float32: 24 bits of a draw times 2**-24, value by value. The
    draws are written into ``out``'s own memory first, then made floats in place."""
    flat = out.reshape(-1)
    raw = flat.view(np.uint32)
    _mt_words(st, pos, raw)
    for i in range(flat.shape[0]):
        flat[i] = np.float32(raw[i] & np.uint32(0xffffff)) * np.float32(1.0 / 16777216.0)


@_jit
def _uniform53(hi, lo):
    """at::uniform_real_distribution<double>(0, 1) from random64 = (hi << 32) | lo: its low 53
    bits times 2**-53."""
    bits = ((np.uint64(hi) << np.uint64(32)) | np.uint64(lo)) & np.uint64((1 << 53) - 1)
    return np.float64(bits) * (1.0 / 9007199254740992.0)


@_jit
def stream_rand64(st, pos, out):
    """torch.rand on the CPU, float64 (one random64, two draws, per value)."""
    flat = out.reshape(-1)
    raw = np.empty(2 * flat.shape[0], np.uint32)
    _mt_words(st, pos, raw)
    for i in range(flat.shape[0]):
        flat[i] = _uniform53(raw[2 * i], raw[2 * i + 1])


@_jit
def stream_randint(st, pos, out, low, span):
    """torch.randint(low, low + span) on the CPU, int64: (draw % span) + low, the draw 64 bits
    wide (two draws, the first the high word) when span >= 2**32."""
    flat = out.reshape(-1)
    wide = span >= (1 << 32)
    raw = np.empty(flat.shape[0] * (2 if wide else 1), np.uint32)
    _mt_words(st, pos, raw)
    for i in range(flat.shape[0]):
        if wide:
            v = (np.uint64(raw[2 * i]) << np.uint64(32)) | np.uint64(raw[2 * i + 1])
        else:
            v = np.uint64(raw[i])
        flat[i] = np.int64(v % np.uint64(span)) + low


@_jit
def stream_poisson_small(st, pos, out, lam):
    """torch.poisson on the CPU for a rate 0 <= lam < 10 (at::native sample_poisson: 0 without
    a draw for lam = 0, else the product of uniforms): X uniforms' product stays above
    exp(-lam). The draws are made one at a time (how many is not known before)."""
    if lam == 0:
        out[:] = 0
        return
    enlam = np.exp(-lam)
    left, nxt = pos[0], pos[1]
    for i in range(out.shape[0]):
        x, prod = 0, 1.0
        while True:
            hi, left, nxt = _mt_one(st, left, nxt)
            lo, left, nxt = _mt_one(st, left, nxt)
            prod *= _uniform53(hi, lo)
            if prod > enlam:
                x += 1
            else:
                break
        out[i] = x
    pos[0], pos[1] = left, nxt


@_jit
def _mt_one(st, left, nxt):
    """One draw, as _mt_words, with [left, next] passed and returned."""
    left -= 1
    if left == 0:
        _mt_twist(st)
        left, nxt = _MT_N, 0
    y = st[nxt]
    y ^= y >> np.uint32(11)
    y ^= (y << np.uint32(7)) & np.uint32(0x9d2c5680)
    y ^= (y << np.uint32(15)) & np.uint32(0xefc60000)
    y ^= y >> np.uint32(18)
    return y, left, nxt + 1


# torch's normal_ on the CPU for float32 tensors of 16 values or more (at::native normal_fill):
# the uniforms of torch.rand fill the tensor, then each run of 16 is turned into normals by
# Box-Muller, pairing value j with value j + 8 (NormalFill16); when the size is not a multiple
# of 16, 16 fresh uniforms make the last 16 values again. On CPUs with AVX2 (AVX-512 ones
# included) torch's Box-Muller uses avx_mathfun's log256_ps and sincos256_ps (Cephes
# polynomials in float32), compiled by GCC, which fuses a multiply into the add that is its
# only use (an FMA). The kernels below do the same operations, with the FMAs where GCC put
# them (found by matching torch's output bit for bit), on 16 lanes at a time;
# data_gen.compiled.Stream.normal strings stream_rand32 and box_muller together as normal_fill.
# data_gen.compiled checks them against torch once per process and keeps torch's normal_
# where they differ (CPUs without AVX2, where torch takes its scalar path, another build).


@intrinsic
def _fma(typingctx, a, b, c):
    """a * b + c rounded once (llvm.fma.f32)."""
    def codegen(context, builder, signature, args):
        fnty = ir.FunctionType(ir.FloatType(), [ir.FloatType()] * 3)
        return builder.call(builder.module.declare_intrinsic("llvm.fma", [ir.FloatType()], fnty),
                            args)
    return types.float32(types.float32, types.float32, types.float32), codegen


@intrinsic
def _bits(typingctx, x):
    """The bits of a float32, as uint32."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(32))
    return types.uint32(types.float32), codegen


@intrinsic
def _from_bits(typingctx, b):
    """The float32 with the bits of a uint32."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())
    return types.float32(types.uint32), codegen


_F = np.float32
_ONE, _HALF, _ZERO, _MINUS_TWO = _F(1.0), _F(0.5), _F(0.0), _F(-2.0)
_TWO_PI = _F(2.0 * np.pi)
_SQRTHF = _F(0.707106781186547524)
_LOG_P = tuple(_F(v) for v in (7.0376836292E-2, -1.1514610310E-1, 1.1676998740E-1,
                               -1.2420140846E-1, 1.4249322787E-1, -1.6668057665E-1,
                               2.0000714765E-1, -2.4999993993E-1, 3.3333331174E-1))
_LOG_Q1, _LOG_Q2 = _F(-2.12194440e-4), _F(0.693359375)
_DP1, _DP2, _DP3 = _F(-0.78515625), _F(-2.4187564849853515625e-4), _F(-3.77489497744594108e-8)
_SIN_P0, _SIN_P1, _SIN_P2 = _F(-1.9515295891E-4), _F(8.3321608736E-3), _F(-1.6666654611E-1)
_COS_P0, _COS_P1, _COS_P2 = (_F(2.443315711809948E-005), _F(-1.388731625493765E-003),
                             _F(4.166664568298827E-002))
_FOPI = _F(1.27323954473516)   # 4 / pi
_I32 = np.int32
_U32 = np.uint32


@_jit
def _log256(x):
    """log256_ps for a normal positive float32."""
    b = _bits(x)
    e = _F(_I32(_I32(b >> _U32(23)) - _I32(127))) + _ONE
    m = _from_bits(_U32(_U32(b & _U32(0x807fffff)) | _U32(0x3f000000)))   # in [0.5, 1)
    small = m < _SQRTHF
    tmp = m if small else _ZERO
    e = e - (_ONE if small else _ZERO)
    m = m - _ONE
    m = m + tmp
    z = m * m
    p0, p1, p2, p3, p4, p5, p6, p7, p8 = _LOG_P
    y = _fma(p0, m, p1)
    y = _fma(y, m, p2)
    y = _fma(y, m, p3)
    y = _fma(y, m, p4)
    y = _fma(y, m, p5)
    y = _fma(y, m, p6)
    y = _fma(y, m, p7)
    y = _fma(y, m, p8)
    y = y * m
    y = _fma(y, z, e * _LOG_Q1)
    y = _fma(-z, _HALF, y)
    m = m + y
    return _fma(e, _LOG_Q2, m)


@_jit
def _sincos256(x):
    """sincos256_ps for x >= 0: (sin x, cos x)."""
    y = x * _FOPI
    j = _I32(y)
    j = _I32(_I32(j + _I32(1)) & _I32(-2))
    y = _F(j)
    x = _fma(y, _DP1, x)
    x = _fma(y, _DP2, x)
    x = _fma(y, _DP3, x)
    z = x * x
    yc = _fma(_COS_P0, z, _COS_P1)
    yc = _fma(yc, z, _COS_P2)
    yc = yc * z
    yc = _fma(yc, z, -(z * _HALF))
    yc = yc + _ONE
    ys = _fma(_SIN_P0, z, _SIN_P1)
    ys = _fma(ys, z, _SIN_P2)
    ys = ys * z
    ys = _fma(ys, x, x)
    poly = _I32(j & _I32(2)) == _I32(0)
    s = (_ZERO + ys) if poly else (yc + _ZERO)
    c = (yc + _ZERO) if poly else (ys + _ZERO)
    s_sign = _U32(_U32(j & _I32(4)) << _U32(29))
    c_sign = _U32(_U32(~_I32(j - _I32(2)) & _I32(4)) << _U32(29))
    return _from_bits(_U32(_bits(s) ^ s_sign)), _from_bits(_U32(_bits(c) ^ c_sign))


@_jit
def _box_muller_lanes(u1, u2, n):
    """NormalFill16's arithmetic on uniform pairs u1[i], u2[i], i < n, in place: u1 gets
    radius * cos(theta), u2 radius * sin(theta) (plus 0, as the FMA with mean 0 adds)."""
    for i in range(n):
        radius = np.sqrt(_MINUS_TWO * _log256(_ONE - u1[i]))
        s, c = _sincos256(_TWO_PI * u2[i])
        u1[i] = radius * c + _ZERO
        u2[i] = radius * s + _ZERO


_BOX_RUNS = 64   # runs of 16 gathered per _box_muller_lanes call


@_jit
def box_muller(data, first, stop):
    """Runs of 16 uniforms first..stop - 1 of ``data`` (float32) into standard normals, as
    NormalFill16: value j of a run pairs with value j + 8. The runs' halves are gathered into
    two arrays first, so that the arithmetic runs on contiguous lanes."""
    a = np.empty(_BOX_RUNS * 8, np.float32)
    b = np.empty(_BOX_RUNS * 8, np.float32)
    for start in range(max(first, 0), stop, _BOX_RUNS):
        end = min(start + _BOX_RUNS, stop)
        k = 0
        for run in range(start, end):
            at = run * 16
            for j in range(8):
                a[k + j] = data[at + j]
                b[k + j] = data[at + 8 + j]
            k += 8
        _box_muller_lanes(a, b, k)
        k = 0
        for run in range(start, end):
            at = run * 16
            for j in range(8):
                data[at + j] = a[k + j]
                data[at + 8 + j] = b[k + j]
            k += 8


# The samplers of data_gen.sampling for float32 draws and images, each in one call: the draws
# in the samplers' order, then the same arithmetic (slots, between, centres, uniform, place).

@_jit
def _counts_and_slots(st, pos, n, lam):
    counts = np.empty(n, np.int64)
    stream_poisson_small(st, pos, counts, lam)
    return slots(counts)


@_jit
def _randint_new(st, pos, n, k, low, high):
    out = np.empty((n, k), np.int64)
    stream_randint(st, pos, out, low, high - low + 1)
    return out


@_jit
def _rand32_new(st, pos, n, k):
    out = np.empty((n, k), np.float32)
    stream_rand32(st, pos, out)
    return out


@_jit
def sample_cells32(st, pos, n, height, width, lam, r_lo, r_hi, a_lo, a_hi):
    """sample_cells: (centre_y, centre_x, radius, amplitude, valid)."""
    valid = _counts_and_slots(st, pos, n, lam)
    k = valid.shape[1]
    r = _randint_new(st, pos, n, k, r_lo, r_hi)
    u_y = _rand32_new(st, pos, n, k)
    u_x = _rand32_new(st, pos, n, k)
    amp = uniform(a_lo, a_hi, _rand32_new(st, pos, n, k))
    return centres(r, height, u_y), centres(r, width, u_x), r, amp, valid


@_jit
def sample_filled32(st, pos, n, height, width, lam, l_lo, l_hi, s_lo, s_hi, v_lo, v_hi):
    """sample_filled_rects: (top, left, height, width, value, valid)."""
    valid = _counts_and_slots(st, pos, n, lam)
    k = valid.shape[1]
    long_side = _randint_new(st, pos, n, k, l_lo, l_hi)
    short_side = _randint_new(st, pos, n, k, s_lo, s_hi)
    vertical = _rand32_new(st, pos, n, k) < 0.5
    h = np.where(vertical, long_side, short_side)
    w = np.where(vertical, short_side, long_side)
    value = uniform(v_lo, v_hi, _rand32_new(st, pos, n, k))
    top, left, h, w = place(h, w, height, width, _rand32_new(st, pos, n, k),
                            _rand32_new(st, pos, n, k))
    return top, left, h, w, value, valid


@_jit
def sample_noisy32(st, pos, n, height, width, lam, side_lo, side_hi, v_lo, v_hi):
    """sample_noisy_rects: (top, left, height, width, value, valid)."""
    valid = _counts_and_slots(st, pos, n, lam)
    k = valid.shape[1]
    h = _randint_new(st, pos, n, k, side_lo, side_hi)
    w = _randint_new(st, pos, n, k, side_lo, side_hi)
    value = uniform(v_lo, v_hi, _rand32_new(st, pos, n, k))
    top, left, h, w = place(h, w, height, width, _rand32_new(st, pos, n, k),
                            _rand32_new(st, pos, n, k))
    return top, left, h, w, value, valid
