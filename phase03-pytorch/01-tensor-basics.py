"""01 - Tensor basics: creation, dtype, device, NumPy interop (phase 03, week 4)

Goal: create tensors, choose their dtype and device, and pass data to and from NumPy
      knowing when memory is shared and when it is copied.
Run:  python phase03-pytorch/01-tensor-basics.py            (about 7 s on a 2-core CPU, imports included)
      python phase03-pytorch/01-tensor-basics.py --quick    (seconds, offline, used by the tests)
Expect: "[check] from_numpy shares memory: ... OK"; float16 turns 70000 into inf; the largest
        relative rounding error over 1e-9..1e6 is 5.6e-08 for float32 (~7 digits), 0.0037 for bfloat16
        (~2-3) and 0.00046 for float16 in its normal range, each just under half its dtype's eps;
        figure dtype_rounding.png shows them.
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked


def parse_args(argv=None):
    return cli.parser(__doc__).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import time

import numpy as np
import torch

from dlcourse import check, plot
from dlcourse import device as devices
import matplotlib.pyplot as plt  # noqa: E402  (after dlcourse.plot, which picks a headless backend)

MATMUL_SIZES_QUICK = [128, 256]         # square matrix sizes timed in --quick
MATMUL_SIZES_FULL = [256, 512, 1024]    # and in a full run (cost grows as n^3)
REPEATS = 3                             # timed repeats per size; we keep the fastest


def creation(run):
    """The ways to make a tensor, and the dtype each one picks."""
    print("\n-- creation")
    examples = {
        "torch.tensor([1, 2, 3])": torch.tensor([1, 2, 3]),          # ints -> int64
        "torch.tensor([1.0, 2.0])": torch.tensor([1.0, 2.0]),        # floats -> float32
        "torch.zeros(2, 3)": torch.zeros(2, 3),
        "torch.full((2,), 7.5)": torch.full((2,), 7.5),
        "torch.arange(0, 10, 3)": torch.arange(0, 10, 3),
        "torch.linspace(0, 1, 5)": torch.linspace(0, 1, 5),
        "torch.eye(2)": torch.eye(2),
    }
    for text, t in examples.items():
        print(f"  {text:26s} shape {tuple(t.shape)!s:8s} {str(t.dtype):14s} {t.tolist()}")
    # Random tensors: a private Generator makes them repeatable without touching global state.
    g = torch.Generator().manual_seed(run.seed)
    a = torch.randn(2, 3, generator=g)
    g.manual_seed(run.seed)
    b = torch.randn(2, 3, generator=g)
    check.equal("same generator seed -> same random tensor", a, b)
    # *_like copies shape, dtype and device from another tensor: no mismatch can sneak in.
    z = torch.zeros_like(a)
    check.equal("zeros_like keeps shape and dtype", (z.shape, z.dtype), (a.shape, a.dtype))
    check.close("torch.linspace vs np.linspace", torch.linspace(0, 1, 11),
                np.linspace(0, 1, 11), atol=1e-7, demo=True)  # two libraries agree: shown, not counted


def dtypes():
    """Sizes, promotion and precision of the dtypes you meet in deep learning."""
    print("\n-- dtype")
    for dt, np_dt in [(torch.float64, np.float64), (torch.float32, np.float32),
                      (torch.float16, np.float16), (torch.int64, np.int64), (torch.uint8, np.uint8)]:
        t = torch.zeros(1000, dtype=dt)
        # numel * element_size is exactly the bytes of the data: the basis of lesson 11.
        check.equal(f"{str(dt):14s} bytes per element = numpy itemsize", t.element_size(),
                    np.dtype(np_dt).itemsize, demo=True)
    print(f"  bfloat16: {torch.zeros(1, dtype=torch.bfloat16).element_size()} bytes, "
          "same exponent range as float32, fewer mantissa bits (no NumPy equivalent)")
    # Type promotion: mixing dtypes picks the "larger" category (int < float), like NumPy.
    ints = torch.tensor([1, 2, 3])
    check.equal("int64 tensor * 0.5 promotes to", (ints * 0.5).dtype, torch.float32)
    check.equal("int64 tensor / 2 (true division) gives", (ints / 2).dtype, torch.float32)
    check.equal("int64 // 2 stays integer", (ints // 2).tolist(), [0, 1, 1])
    third = torch.tensor(1 / 3, dtype=torch.float64)
    for dt in (torch.float32, torch.bfloat16, torch.float16):
        print(f"  1/3 stored as {str(dt):14s} -> {third.to(dt).item():.10f}  "
              f"(eps {torch.finfo(dt).eps:.2g}, max {torch.finfo(dt).max:.3g})")
    # float16 overflows above 65504: activations this large become inf. bfloat16 does not.
    big = torch.tensor(70000.0)
    check.true("float16 overflows at 70000", torch.isinf(big.half()).item(),
               f"float16 -> {big.half().item()}, bfloat16 -> {big.bfloat16().item()}")
    check.true("uint8 wraps around: 250 + 10", (torch.tensor(250, dtype=torch.uint8) + 10).item() == 4,
               "250 + 10 = 4 in uint8 (arithmetic mod 256) - why images are cast before maths")


def numpy_interop():
    """from_numpy / .numpy() share memory; torch.tensor() copies."""
    print("\n-- NumPy interop")
    arr = np.arange(6, dtype=np.float32)
    shared = torch.from_numpy(arr)      # a view of the same buffer, no copy
    copied = torch.tensor(arr)          # a new buffer
    check.true("from_numpy points at the NumPy buffer", shared.data_ptr() == arr.ctypes.data,
               f"data_ptr {shared.data_ptr():#x} == arr.ctypes.data {arr.ctypes.data:#x}")
    arr[0] = 100.0                      # change the NumPy array...
    check.equal("from_numpy shares memory (sees arr[0] = 100)", shared[0].item(), 100.0)
    check.equal("torch.tensor copied (still 0)", copied[0].item(), 0.0)
    back = shared.numpy()               # .numpy() on a CPU tensor is a view too
    shared[1] = -1.0
    check.equal("tensor.numpy() shares memory too", float(back[1]), -1.0)
    # The float64 trap: NumPy defaults to float64, torch models to float32.
    x64 = torch.from_numpy(np.random.rand(3))
    print(f"  np.random.rand -> {x64.dtype}: call .float() before feeding a float32 model")
    check.equal("from_numpy keeps NumPy's dtype", x64.dtype, torch.float64)


def device_tour(run, sizes):
    """Moving tensors between devices, and what a matrix product costs on each."""
    print("\n-- device")
    t = torch.ones(3)
    moved = t.to(run.device)            # a copy on another device; a no-op if already there
    print(f"  t.device = {t.device}, t.to(run.device).device = {moved.device}")
    # Back to NumPy always goes through the CPU: .cpu() first (a no-op on a CPU tensor).
    check.equal("round trip device -> cpu -> numpy", moved.cpu().numpy().tolist(), [1.0, 1.0, 1.0])
    timings = {}
    for n in sizes:
        a = torch.randn(n, n, device=run.device)
        b = torch.randn(n, n, device=run.device)
        best = float("inf")
        for _ in range(REPEATS):
            devices.synchronize(run.device)  # GPU work is queued: wait before reading the clock
            start = time.perf_counter()
            a @ b
            devices.synchronize(run.device)
            best = min(best, time.perf_counter() - start)
        gflops = 2 * n ** 3 / best / 1e9    # an n x n matmul costs 2 n^3 floating-point ops
        timings[n] = gflops
        print(f"  {n:5d} x {n:<5d} matmul on {run.device.type}: {best * 1e3:7.2f} ms  ({gflops:6.1f} GFLOP/s)")
    return timings


def relative_rounding_error(x, dt):
    """|x stored in dtype dt - x| / x for positive float64 values x; 1.0 where x overflows to
    inf or underflows to 0 (all is lost there)."""
    # EXERCISE relative_rounding_error: round-trip x through dt and back to float64, divide |stored - x| by x; set 1.0 where stored is inf or 0
    stored = x.to(dt).double()
    rel = (stored - x).abs() / x
    rel[torch.isinf(stored) | (stored == 0)] = 1.0
    return rel
    # END EXERCISE


def rounding_figure(run):
    """Relative rounding error of each float dtype across magnitudes, checked against theory:
    rounding to the nearest of p-bit mantissas errs by at most 2^-p = eps / 2 (relative), in
    the normal range [finfo.tiny, finfo.max] where the full mantissa is available."""
    x = torch.logspace(-9, 6, 600, dtype=torch.float64)
    fig, ax = plt.subplots(figsize=(7, 4))
    worst = {}
    for dt in (torch.float32, torch.bfloat16, torch.float16):
        rel = relative_rounding_error(x, dt)
        info = torch.finfo(dt)
        normal = (x >= info.tiny) & (x <= info.max)
        worst[dt] = rel[normal].max().item()
        # Never above eps/2; and 600 values spread over 15 decades land close to it (>= eps/4).
        check.true(f"{str(dt):14s} worst relative error in its normal range in [eps/4, eps/2]",
                   info.eps / 4 <= worst[dt] <= info.eps / 2,
                   f"{worst[dt]:.3g} in [{info.eps / 4:.3g}, {info.eps / 2:.3g}] "
                   f"(~{-np.log10(info.eps / 2):.1f} decimal digits)")
        # The error jumps around with each value; plot its running maximum (the envelope).
        envelope = torch.nn.functional.max_pool1d(rel.clamp(min=1e-12).view(1, 1, -1), 21,
                                                  stride=1, padding=10)
        ax.loglog(x.numpy(), envelope.view(-1).numpy(), label=str(dt).replace("torch.", ""), lw=2)
    ax.set(xlabel="value x", ylabel="|stored - x| / x", ylim=(1e-10, 2),
           title="Relative rounding error by dtype (1.0 = overflow or underflow)")
    ax.legend(loc="center right")
    plot.save(fig, run, "dtype_rounding.png")
    tiny = torch.tensor([1e-9], dtype=torch.float64)   # for the question: which dtypes lose 1e-9
    lost = [str(dt)[6:] for dt in (torch.float32, torch.bfloat16, torch.float16)
            if relative_rounding_error(tiny, dt).item() == 1.0]
    return worst, lost


def main(args) -> dict:
    run = cli.start(args, __file__)
    creation(run)
    dtypes()
    numpy_interop()
    timings = device_tour(run, MATMUL_SIZES_QUICK if run.quick else MATMUL_SIZES_FULL)
    worst, lost = rounding_figure(run)
    biggest = max(timings)
    coarsest = max(worst, key=worst.get)
    return cli.finish(run, {f"matmul_gflops_{biggest}": timings[biggest],
                            **{f"worst_rel_error_{str(dt)[6:]}": v for dt, v in worst.items()}},
                      answers={
        "coarsest": (str(coarsest)[6:], "worst relative error in the normal range: " + ", ".join(
            f"{str(dt)[6:]} {v:.3g}" for dt, v in worst.items()) + " (dtype_rounding.png)"),
        "underflows": (lost[0] if len(lost) == 1 else "none", f"1e-9 stored as 0 in: "
                       f"{', '.join(lost) or 'no dtype'} (dtype_rounding.png, left edge)"),
    })


# Predict, then run: answer in your copy (`python -m dlcourse exercise 03.01`) before running it;
# `python -m dlcourse check 03.01` compares your answers with what the run measures.
# PREDICT coarsest (float32 / bfloat16 / float16): which dtype has the largest worst-case relative rounding error in its normal range?
# ANSWER coarsest:
# PREDICT underflows (float32 / bfloat16 / float16 / none): which single dtype stores 1e-9 as exactly 0?
# ANSWER underflows:


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
