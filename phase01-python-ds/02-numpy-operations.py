"""02 - NumPy operations: vectorisation and broadcasting (phase 01, week 1)

Goal: replace Python loops with whole-array operations, predict broadcast shapes by rule,
      reduce over chosen axes, and measure how much faster the vectorised code is.
Run:  python phase01-python-ds/02-numpy-operations.py            (about 15 s on a 2-core CPU)
      python phase01-python-ds/02-numpy-operations.py --quick    (seconds, offline, used by the tests)
Expect: "[check] pairwise distances (23 x 17): broadcast vs loop: max |diff| ~1e-15"; at N=800
        broadcasting is ~75-95x faster than the loop (two full runs on a shared 2-core CPU; the
        matmul form faster still); figure loop_vs_vectorised.png.
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked


def parse_args(argv=None):
    return cli.parser(__doc__).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import time

import numpy as np

from dlcourse import check, plot

import matplotlib.pyplot as plt  # after dlcourse.plot, which selects the headless backend

DIM = 8                              # features per point in the distance example
CHECK_N, CHECK_M = 23, 17            # points in x and y for the correctness checks: N != M, so
                                     # a transposed result or a swapped axis cannot pass
SIZES_QUICK = [20, 40, 80]           # points per side of the distance matrix (--quick)
SIZES_FULL = [25, 50, 100, 200, 400, 800]  # full run: up to 640k point pairs in the loop
REPEATS = 3                          # best-of-N timing: the minimum is least disturbed by noise


def broadcast_shape(a, b):
    """NumPy's broadcasting rule written out: align shapes on the right; each pair of
    sizes must be equal or contain a 1, and the result takes the larger."""
    out = []
    for i in range(1, max(len(a), len(b)) + 1):
        da = a[-i] if i <= len(a) else 1  # a missing leading axis acts like size 1
        db = b[-i] if i <= len(b) else 1
        if da != db and 1 not in (da, db):
            raise ValueError(f"shapes {a} and {b} do not broadcast (axis -{i}: {da} vs {db})")
        out.append(max(da, db))
    return tuple(reversed(out))


def broadcasting_rules():
    """Our rule against np.broadcast_shapes on shapes that do and do not broadcast."""
    pairs = [((3, 1), (1, 4)), ((5, 4), (4,)), ((8, 1, 6, 1), (7, 1, 5)), ((2, 3), ()),
             ((1,), (6, 1, 1))]

    def ours_or_error(a, b):   # a wrong rule that raises on a valid pair fails the check
        try:
            return broadcast_shape(a, b)
        except ValueError as err:
            return f"raised: {err}"
    ours = [ours_or_error(a, b) for a, b in pairs]
    ref = [np.broadcast_shapes(a, b) for a, b in pairs]
    for (a, b), r in zip(pairs, ours):
        print(f"  {str(a):>14} with {str(b):<11} -> {r}")
    check.equal("broadcast_shape() == np.broadcast_shapes on 5 pairs", ours, ref)
    check.raises("(5, 4) with (5,) does not broadcast", ValueError, broadcast_shape, (5, 4), (5,))
    check.raises("numpy agrees: (5, 4) + (5,) raises", ValueError,
                 np.add, np.zeros((5, 4)), np.zeros(5), demo=True)

    # The classic silent bug: a (N,) vector minus a (N, 1) column is an (N, N) matrix.
    y = np.arange(4.0)             # (4,)
    pred = y[:, None] + 0.5        # (4, 1), e.g. a model output kept as a column
    err = y - pred                 # (4,) with (4, 1) -> (4, 4): NOT an elementwise error
    print(f"  (4,) - (4, 1) -> {err.shape}: the mean of that is not the error you wanted")
    check.equal("(N,) - (N, 1) broadcasts to (N, N)", err.shape, (4, 4), demo=True)


def pairwise_loop(x, y):
    """Euclidean distances with two Python loops: D[i, j] = ||x_i - y_j||."""
    d = np.empty((len(x), len(y)))
    for i in range(len(x)):
        for j in range(len(y)):
            s = 0.0
            for k in range(x.shape[1]):
                s += (x[i, k] - y[j, k]) ** 2
            d[i, j] = s ** 0.5
    return d


def pairwise_broadcast(x, y):
    """The same with broadcasting: (N, 1, D) - (1, M, D) -> (N, M, D), then reduce D."""
    diff = x[:, None, :] - y[None, :, :]       # (N, M, D)
    return np.sqrt((diff ** 2).sum(axis=-1))   # (N, M)


def pairwise_expanded(x, y):
    """Without the (N, M, D) temporary: ||x-y||^2 = ||x||^2 + ||y||^2 - 2 x.y (one matmul).
    Faster and lighter on memory, but cancellation can make tiny squares negative: clip."""
    sq = (x ** 2).sum(1)[:, None] + (y ** 2).sum(1)[None, :] - 2 * x @ y.T  # (N, M)
    return np.sqrt(np.clip(sq, 0.0, None))


def distances_agree(rng):
    """The three distance functions on an N x M problem (N != M) against the loop, which
    follows the definition term by term."""
    x, y = rng.normal(size=(CHECK_N, DIM)), rng.normal(size=(CHECK_M, DIM))
    d_loop = pairwise_loop(x, y)                                        # (N, M)
    check.close(f"pairwise distances ({CHECK_N} x {CHECK_M}): broadcast vs loop",
                pairwise_broadcast(x, y), d_loop, atol=1e-12)
    # The expanded form subtracts numbers of size ||x||^2 ~ DIM to get d^2: an absolute error
    # ~ EPS * DIM in d^2, i.e. ~ sqrt(EPS * DIM) in d when d is near 0. Allow 10x that.
    tol = 10 * np.sqrt(np.finfo(float).eps * max((x ** 2).sum(1).max(), (y ** 2).sum(1).max()))
    check.close(f"pairwise distances ({CHECK_N} x {CHECK_M}): matmul form vs loop",
                pairwise_expanded(x, y), d_loop, atol=tol)
    check.close("distance of each point to itself is exactly 0",
                np.diag(pairwise_broadcast(x, x)), np.zeros(CHECK_N), atol=0)


def reductions(rng):
    """sum/mean/max over an axis: the axis you name is the one that disappears."""
    scores = rng.integers(0, 100, size=(4, 3)).astype(float)  # 4 students x 3 exams
    per_exam = scores.mean(axis=0)                 # (3,): collapse the student axis
    per_student = scores.mean(axis=1)              # (4,): collapse the exam axis
    best_exam = scores.argmax(axis=1)              # (4,): index of each student's best exam
    loop_exam = np.array([sum(scores[i, j] for i in range(4)) / 4 for j in range(3)])
    check.close("mean(axis=0) vs a loop over rows", per_exam, loop_exam, atol=1e-12)
    print(f"  scores (4, 3); mean(axis=0) {per_exam.shape}, mean(axis=1) {per_student.shape},"
          f" argmax(axis=1) = {best_exam}")

    # keepdims=True leaves a size-1 axis, so the result broadcasts back against the input:
    # a numerically stable softmax per row, softmax(z)_j = exp(z_j - max z) / sum_k exp(z_k - max z)
    z = rng.normal(size=(5, 7)) * 30                    # large logits: naive exp would overflow
    z_shift = z - z.max(axis=1, keepdims=True)          # (5, 7) - (5, 1)
    p = np.exp(z_shift) / np.exp(z_shift).sum(axis=1, keepdims=True)
    loop_p = np.array([[np.exp(v - max(row)) / sum(np.exp(u - max(row)) for u in row)
                        for v in row] for row in z])
    check.close("row softmax with keepdims vs a loop", p, loop_p, atol=1e-12)
    check.close("softmax rows sum to 1", p.sum(axis=1), np.ones(5), atol=1e-12)


def best_of(fn, *a):
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        out = fn(*a)
        times.append(time.perf_counter() - t0)
    return min(times), out


def timing(rng, sizes):
    """Loop vs broadcast vs expanded-matmul on growing N x N distance matrices."""
    rows = []
    for n in sizes:
        x, y = rng.normal(size=(n, DIM)), rng.normal(size=(n, DIM))
        t_loop, _ = best_of(pairwise_loop, x, y)
        t_bc, _ = best_of(pairwise_broadcast, x, y)
        t_mm, _ = best_of(pairwise_expanded, x, y)
        rows.append((n, t_loop, t_bc, t_mm))
        print(f"  N={n:>4}: loop {t_loop * 1e3:9.2f} ms  broadcast {t_bc * 1e3:7.3f} ms  "
              f"matmul form {t_mm * 1e3:7.3f} ms  speed-up x{t_loop / t_bc:,.0f}")
    check.greater(f"broadcast faster than the loop at N={n} (x10 is loose)", t_loop, 10 * t_bc)
    return rows


def figure(run, rows):
    n = [r[0] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4))
    for col, label, style in [(1, "Python loops", "o-"), (2, "broadcast (N, M, D)", "s-"),
                              (3, "matmul form", "^-")]:
        ax.loglog(n, [r[col] * 1e3 for r in rows], style, label=label)
    ax.set(xlabel="N (points per side)", ylabel="time (ms, best of %d)" % REPEATS,
           title=f"N x N distance matrix, D={DIM}")
    ax.set_xticks(n, [str(v) for v in n])                           # label the measured N only
    ax.tick_params(axis="x", which="minor", labelbottom=False)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return plot.save(fig, run, "loop_vs_vectorised.png")


def main(args) -> dict:
    run = cli.start(args, __file__, use_torch=False)
    rng = np.random.default_rng(run.seed)
    print("1) broadcasting rules")
    broadcasting_rules()
    print("2) reductions over axes")
    reductions(rng)
    print("3) pairwise distances: loop, broadcast, matmul form")
    distances_agree(rng)
    print("4) loop vs vectorised: timing")
    rows = timing(rng, SIZES_QUICK if run.quick else SIZES_FULL)
    figure(run, rows)
    n, t_loop, t_bc, t_mm = rows[-1]
    return cli.finish(run, {"n": n, "loop_ms": round(t_loop * 1e3, 2),
                            "broadcast_ms": round(t_bc * 1e3, 3),
                            "speedup": round(t_loop / t_bc, 1)})


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
