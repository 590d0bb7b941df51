"""01 - NumPy basics: arrays, dtypes, views vs copies (phase 01, week 1)

Goal: create arrays, read their dtype/shape/strides, index and slice them, and learn
      exactly when NumPy hands you a view (shared memory) and when a copy.
Run:  python phase01-python-ds/01-numpy-basics.py            (about 2 s on a 2-core CPU)
      python phase01-python-ds/01-numpy-basics.py --quick    (seconds, offline, used by the tests)
Expect: "[check] element offsets from strides == the flat positions ... OK" for a contiguous
        array, its transpose and a stepped slice; "[demo] fancy indexing copies ... OK";
        a view of 50M floats takes microseconds, a copy of them ~0.5 s (full run).
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked


def parse_args(argv=None):
    return cli.parser(__doc__).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import time

import numpy as np

from dlcourse import check

SHAPE = (3, 4, 5)          # a small 3-D array: easy to print, enough axes to see strides;
                           # three different sizes, so mixing up two axes cannot go unnoticed
COPY_SIZES_QUICK = [10**4, 10**5, 10**6]            # elements timed in --quick
COPY_SIZES_FULL = [10**4, 10**5, 10**6, 10**7, 5 * 10**7]  # full run: up to 400 MB of float64


def creation_and_dtypes():
    """The handful of constructors you will use daily, and what dtype each picks."""
    made = {
        "np.array([1, 2, 3])": np.array([1, 2, 3]),            # ints -> int64 (platform int)
        "np.array([1, 2.5])": np.array([1, 2.5]),              # any float -> float64
        "np.zeros((2, 3))": np.zeros((2, 3)),                  # float64 by default
        "np.arange(0, 10, 3)": np.arange(0, 10, 3),            # like range(), end excluded
        "np.linspace(0, 1, 5)": np.linspace(0, 1, 5),          # end included, 5 points
        "np.eye(3, dtype=np.float32)": np.eye(3, dtype=np.float32),
        "rng.normal(size=(2, 2))": np.random.default_rng(0).normal(size=(2, 2)),
    }
    for expr, arr in made.items():
        print(f"  {expr:<30} dtype={str(arr.dtype):<8} shape={arr.shape}")

    # dtypes are fixed-width machine numbers, not Python ints: int8 wraps around silently.
    small = np.array([120], dtype=np.int8)
    wrapped = small + np.int8(10)  # 130 does not fit in [-128, 127] -> 130 - 256
    print(f"  int8: 120 + 10 = {wrapped[0]}  (wraps modulo 2^8; Python's int would give 130)")
    # NumPy's own behaviour against the arithmetic rule: shown, not counted as our check.
    check.equal("int8 arithmetic wraps modulo 256", int(wrapped[0]), 130 - 256, demo=True)

    # float32 keeps ~7 significant digits, float64 ~16: the reason deep learning can
    # train in float32 but numerical checks compare in float64.
    third32, third64 = np.float32(1) / np.float32(3), 1.0 / 3.0
    print(f"  1/3 in float32 = {third32:.10f}, in float64 = {third64:.17f}")
    check.less("float32 error of 1/3 is below its machine epsilon",
               abs(float(third32) - third64), float(np.finfo(np.float32).eps), demo=True)

    # astype always allocates a new array (even when the dtype is unchanged, unless copy=False).
    a = np.arange(6, dtype=np.int32)
    b = a.astype(np.float64)
    print(f"  astype: {a.dtype} -> {b.dtype}, itemsize {a.itemsize} -> {b.itemsize} bytes")


def c_strides(shape, itemsize):
    """Strides of a C-ordered (row-major) array: one step along axis k skips a whole block
    of the later axes, so strides[k] = itemsize * (product of the sizes after axis k)."""
    return tuple(itemsize * int(np.prod(shape[k + 1:])) for k in range(len(shape)))


def element_offset(index, strides, start=0):
    """Byte offset of element `index` in the buffer: start + sum_k index[k] * strides[k].
    `start` is where the view's first element sits (a slice may begin inside the buffer)."""
    return start + sum(i * s for i, s in zip(index, strides))


def strides_and_reshape(rng):
    """An ndarray is one flat buffer plus (shape, strides): the bytes to step along each axis."""
    # Element values 0, 1, 2, ... in buffer order: each element's value IS its position in
    # the flat buffer, so we can test address arithmetic without reading raw memory.
    x = np.arange(np.prod(SHAPE), dtype=np.float64).reshape(SHAPE)  # (3, 4, 5)
    print(f"  x.shape={x.shape} x.strides={x.strides} itemsize={x.itemsize}")
    check.equal("c_strides(shape, itemsize) == numpy's strides, float64 (3, 4, 5) and "
                "float32 (2, 7)", [c_strides(SHAPE, 8), c_strides((2, 7), 4)],
                [x.strides, np.empty((2, 7), np.float32).strides])

    # A transpose only swaps the strides; a stepped slice changes them and may start
    # inside the buffer (a negative step walks backwards). No data moves in any of them.
    views = {"x": x, "x.transpose(2, 0, 1)": x.transpose(2, 0, 1),   # (5, 3, 4)
             "x[:, ::2, 1:]": x[:, ::2, 1:],                          # (3, 2, 4)
             "x[::-1, :, ::2]": x[::-1, :, ::2]}                      # (3, 4, 3)
    base = x.__array_interface__["data"][0]                           # buffer address
    for name, v in views.items():
        start = v.__array_interface__["data"][0] - base               # bytes into the buffer
        idx = [tuple(int(rng.integers(n)) for n in v.shape) for _ in range(20)]
        by_strides = [element_offset(ix, v.strides, start) // v.itemsize for ix in idx]
        print(f"  {name:<22} shape={v.shape} strides={v.strides} starts at byte {start}")
        check.equal(f"element offsets from strides == the flat positions, {name}",
                    np.array(by_strides, dtype=float), np.array([v[ix] for ix in idx]))

    t = views["x.transpose(2, 0, 1)"]
    check.true("transpose is a view", np.shares_memory(t, x) and not t.flags.c_contiguous,
               "shares memory, no longer C-contiguous", demo=True)
    # Reshaping a non-contiguous array cannot be expressed with strides -> NumPy copies.
    r = t.reshape(-1)  # (60,)
    check.true("reshape of a transposed array copies", not np.shares_memory(r, x),
               "ravel/reshape of a non-contiguous array allocates", demo=True)
    return x


def indexing_views_and_copies(x):
    """Basic slicing returns views; fancy (integer-array) and boolean indexing copy.
    These are NumPy's rules, shown as [demo] lines: they test NumPy, not code of ours."""
    print(f"  x[1, 2, 3] = {x[1, 2, 3]}; x[-1, :, 0] = {x[-1, :, 0]}")
    print(f"  x[:, ::2, 1:4].shape = {x[:, ::2, 1:4].shape}")   # (3, 2, 3)
    print(f"  x[..., 0].shape = {x[..., 0].shape}; x[:, None].shape = {x[:, None].shape}")

    a = x.copy()
    view = a[0, 1:3]      # basic slice: start/stop/step per axis -> a view
    fancy = a[0, [1, 2]]  # integer array: gathers arbitrary rows -> a fresh array
    mask = a[0] > 10      # boolean mask: selects arbitrary elements -> a fresh array
    masked = a[0][mask]
    check.true("basic slice shares memory", np.shares_memory(view, a) and view.base is not None,
               f"np.shares_memory(a[0, 1:3], a) = {np.shares_memory(view, a)}", demo=True)
    check.true("fancy indexing copies", not np.shares_memory(fancy, a),
               f"np.shares_memory(a[0, [1, 2]], a) = {np.shares_memory(fancy, a)}", demo=True)
    check.true("boolean indexing copies", not np.shares_memory(masked, a),
               f"np.shares_memory(a[0][a[0] > 10], a) = {np.shares_memory(masked, a)}",
               demo=True)

    # The consequence that bites: writing through a view changes the original...
    before = a[0, 1, 0]
    view[0, 0] = -1.0
    check.equal("write through a view reaches the original", float(a[0, 1, 0]), -1.0, demo=True)
    # ...while writing into a copy does not.
    fancy[1, 0] = -2.0
    check.equal("write into a fancy-index copy leaves the original", float(a[0, 2, 0]),
                float(x[0, 2, 0]), demo=True)
    print(f"  a[0, 1, 0]: {before} -> {a[0, 1, 0]} via the view; a[0, 2, 0] untouched by the copy")
    # But fancy indexing on the LEFT of '=' writes in place (it calls __setitem__).
    a[0, [1, 2], 0] = 99.0
    check.equal("fancy-index assignment writes in place", a[0, [1, 2], 0],
                np.array([99.0, 99.0]), demo=True)


def time_view_vs_copy(sizes):
    """A view is O(1) (new header, same buffer); a copy is O(n) (touches every byte)."""
    rows = []
    for n in sizes:
        big = np.ones(n)
        t0 = time.perf_counter()
        v = big[::1]
        t_view = time.perf_counter() - t0
        t0 = time.perf_counter()
        c = big.copy()
        t_copy = time.perf_counter() - t0
        rows.append((n, t_view, t_copy))
        print(f"  n={n:>10,}  view {t_view * 1e6:8.1f} us   copy {t_copy * 1e3:8.2f} ms  "
              f"({big.nbytes / 1e6:.0f} MB)")
        del v, c, big
    # Property: the copy of the largest array costs far more than its view (>10x is loose).
    n, t_view, t_copy = rows[-1]
    check.greater(f"copy of {n:,} floats slower than a view", t_copy, 10 * t_view)
    return rows


def main(args) -> dict:
    run = cli.start(args, __file__, use_torch=False)
    print("1) creation and dtypes")
    creation_and_dtypes()
    print("2) shape, strides, reshape")
    x = strides_and_reshape(np.random.default_rng(run.seed))
    print("3) indexing: views vs copies")
    indexing_views_and_copies(x)
    print("4) cost of a view vs a copy")
    rows = time_view_vs_copy(COPY_SIZES_QUICK if run.quick else COPY_SIZES_FULL)
    n, t_view, t_copy = rows[-1]
    metrics = {"largest_n": n, "view_us": round(t_view * 1e6, 2),
               "copy_ms": round(t_copy * 1e3, 3)}
    return cli.finish(run, metrics)


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
