"""02 - Tensor operations: views, broadcasting, einsum (phase 03, week 4)

Goal: index, reshape and combine tensors knowing which operations share memory (views) and
      which copy, broadcast shapes on purpose, write products with einsum, and avoid in-place traps.
Run:  python phase03-pytorch/02-tensor-operations.py            (about 6 s on a 2-core CPU, imports included)
      python phase03-pytorch/02-tensor-operations.py --quick    (seconds, offline, used by the tests)
Expect: "[check] einsum vs explicit loops: max |diff| 0" (CPU), "[demo] einsum 'ik,kj->ij' vs a @ b:
        max |diff| 0" and the same for batched and attention-shaped products; broadcast distances
        match torch.cdist within 1e-6; the planted in-place bug raises "modified by an inplace operation".
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked


def parse_args(argv=None):
    return cli.parser(__doc__).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import time

import torch

from dlcourse import check
from dlcourse import device as devices

B, H, T, D = 4, 2, 8, 16        # batch, heads, sequence length, head size for the attention product
RTOL = 1e-5                     # float32 sums in a different order differ by a few ulp
TIMING_N_QUICK = 256            # square size for the einsum vs matmul timing in --quick
TIMING_N_FULL = 1024            # and in a full run


def indexing(run):
    print("\n-- indexing: basic slices are views, advanced indexing copies")
    x = torch.arange(12, device=run.device).view(3, 4)       # (3, 4)
    row = x[1]                                               # basic indexing: a view
    picked = x[[0, 2]]                                       # a list index: a copy
    check.true("x[1] shares x's memory", row.data_ptr() == x.data_ptr() + 4 * x.element_size(),
               "row.data_ptr() == x.data_ptr() + 4 elements")
    check.true("x[[0, 2]] is a new tensor", picked.untyped_storage().data_ptr() != x.untyped_storage().data_ptr(),
               "different storage")
    mask = x % 3 == 0                                        # boolean mask, same shape as x
    print(f"  x[x % 3 == 0] = {x[mask].tolist()} (a mask flattens: shape {tuple(x[mask].shape)})")
    # Picking one entry per row - e.g. the logit of the true class - two ways:
    logits = torch.randn(5, 10, device=run.device)           # (B, classes)
    y = torch.tensor([3, 0, 9, 3, 1], device=run.device)     # (B,)
    by_index = logits[torch.arange(5, device=run.device), y]  # (B,)
    by_gather = logits.gather(1, y[:, None]).squeeze(1)       # (B, 1) -> (B,)
    check.equal("logits[arange, y] == logits.gather(1, y)", by_index, by_gather, demo=True)


def views(run):
    print("\n-- view / reshape / permute / contiguous")
    x = torch.arange(24.0, device=run.device).view(2, 3, 4)   # (2, 3, 4)
    print(f"  x.shape {tuple(x.shape)}, x.stride() {x.stride()}: step in memory per index")
    p = x.permute(0, 2, 1)                                    # (2, 4, 3): same memory, new strides
    print(f"  p = x.permute(0, 2, 1): shape {tuple(p.shape)}, stride {p.stride()}, "
          f"contiguous {p.is_contiguous()}")
    check.raises("p.view(2, 12) on a permuted tensor", RuntimeError, p.view, 2, 12)
    try:                                                      # the same, measured for the question
        p.view(2, 12)
        view_permuted = "works"
    except RuntimeError:
        view_permuted = "raises"
    flat = p.reshape(2, 12)                                   # reshape copies when it must
    check.true("reshape of a permuted tensor copied", flat.data_ptr() != x.data_ptr(),
               "new data_ptr")
    same = p.contiguous().view(2, 12)                         # what reshape did, spelled out
    check.equal("reshape == contiguous().view", flat, same, demo=True)
    v = x.view(6, 4)                                          # contiguous: view is free
    check.true("view of a contiguous tensor shares memory", v.data_ptr() == x.data_ptr(), "same data_ptr")
    # expand fakes a repeat with stride 0 (no memory); repeat really copies.
    col = torch.arange(3.0, device=run.device).view(3, 1)     # (3, 1)
    e, r = col.expand(3, 1000), col.repeat(1, 1000)           # both (3, 1000)
    print(f"  expand stride {e.stride()} (no copy), repeat stride {r.stride()} "
          f"({r.numel() * r.element_size()} bytes)")
    check.equal("expand and repeat hold the same values", e, r, demo=True)
    expand_bytes = 0 if e.data_ptr() == col.data_ptr() else e.numel() * e.element_size()
    return view_permuted, expand_bytes, r.numel() * r.element_size()


def pairwise_distance(a, b):
    """Euclidean distance between every row of a (N, D) and every row of b (M, D): (N, M)."""
    # EXERCISE pairwise_distance: give a a size-1 axis 1 and b a size-1 axis 0, subtract (N, M, D), then sqrt of the sum of squares over D
    # (N, 1, D) - (1, M, D) -> (N, M, D): every pair, no Python loop.
    diff = a[:, None, :] - b[None, :, :]                      # (N, M, D)
    dist = diff.pow(2).sum(-1).sqrt()                         # (N, M)
    return dist
    # END EXERCISE


def broadcasting(run):
    print("\n-- broadcasting: align shapes from the right; size-1 dims stretch")
    g = torch.Generator().manual_seed(run.seed)
    a = torch.randn(50, 3, generator=g).to(run.device)        # (N, D)
    b = torch.randn(40, 3, generator=g).to(run.device)        # (M, D)
    dist = pairwise_distance(a, b)                            # (N, M)
    # cdist's default for many rows is |a|^2 + |b|^2 - 2 a.b through a matrix product, which
    # loses digits for close pairs; the direct mode computes the differences as we do.
    check.close("broadcast pairwise distance vs torch.cdist", dist,
                torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist"), atol=1e-5)
    check.raises("(4, 3) + (4,) does not broadcast", RuntimeError,
                 torch.add, torch.ones(4, 3), torch.ones(4))
    fixed = torch.ones(4, 3) + torch.ones(4)[:, None]        # (4, 3) + (4, 1): meant per row
    check.equal("the fix: add a size-1 axis", tuple(fixed.shape), (4, 3))


def einsum_section(run, timing_n):
    print("\n-- einsum: name every axis; axes missing from the output are summed")
    g = torch.Generator().manual_seed(run.seed + 1)
    a = torch.randn(6, 5, generator=g).to(run.device)         # (I, K)
    b = torch.randn(5, 7, generator=g).to(run.device)         # (K, J)
    mm = torch.einsum("ik,kj->ij", a, b)                      # sum over k: a matrix product
    # torch against torch: demonstrations of what each einsum spelling means, not counted.
    check.close("einsum 'ik,kj->ij' vs a @ b", mm, a @ b, atol=1e-6, rtol=RTOL, demo=True)
    # The same sum written as loops, to pin down what the letters mean.
    loops = torch.zeros(6, 7)
    ac, bc = a.cpu(), b.cpu()
    for i in range(6):
        for j in range(7):
            loops[i, j] = sum(ac[i, k] * bc[k, j] for k in range(5))
    check.close("einsum vs explicit loops", mm, loops, atol=1e-5)
    xb = torch.randn(B, 6, 5, generator=g).to(run.device)     # (B, I, K)
    yb = torch.randn(B, 5, 7, generator=g).to(run.device)     # (B, K, J)
    check.close("einsum 'bik,bkj->bij' vs torch.bmm", torch.einsum("bik,bkj->bij", xb, yb),
                torch.bmm(xb, yb), atol=1e-6, rtol=RTOL, demo=True)
    q = torch.randn(B, H, T, D, generator=g).to(run.device)   # (B, H, T, D)
    k = torch.randn(B, H, T, D, generator=g).to(run.device)   # (B, H, T, D)
    scores = torch.einsum("bhqd,bhkd->bhqk", q, k)            # (B, H, T, T): attention scores
    check.close("einsum attention scores vs q @ k.transpose(-2, -1)", scores,
                q @ k.transpose(-2, -1), atol=1e-6, rtol=RTOL, demo=True)
    check.close("einsum 'ii->' vs trace", torch.einsum("ii->", a[:5]), torch.trace(a[:5]), atol=1e-6,
                demo=True)
    # Speed: einsum hands this case to the same matmul kernel, so it costs about the same.
    big_a = torch.randn(timing_n, timing_n, device=run.device)
    big_b = torch.randn(timing_n, timing_n, device=run.device)
    for name, fn in [("a @ b", lambda: big_a @ big_b),
                     ("einsum", lambda: torch.einsum("ik,kj->ij", big_a, big_b))]:
        fn()                                                  # warm-up
        best = float("inf")
        for _ in range(3):                                    # fastest of 3: less noise
            devices.synchronize(run.device)
            start = time.perf_counter()
            fn()
            devices.synchronize(run.device)
            best = min(best, time.perf_counter() - start)
        print(f"  {timing_n}x{timing_n} {name:7s}: {best * 1e3:7.2f} ms")


def inplace_pitfalls(run):
    print("\n-- in-place pitfalls (methods ending in _ and +=, -=, ...)")
    x = torch.zeros(2, 3, device=run.device)
    row = x[0]
    row += 1                          # in place on a view: x changes too
    check.equal("row += 1 on a view wrote into x", x[0].tolist(), [1.0, 1.0, 1.0])
    row = row + 1                     # a new tensor bound to the name row: x unchanged
    check.equal("row = row + 1 left x alone", x[0].tolist(), [1.0, 1.0, 1.0])
    w = torch.randn(3, device=run.device, requires_grad=True)
    check.raises("in-place update of a leaf that requires grad", RuntimeError, w.add_, 1.0)

    def modify_saved_output():
        s = torch.sigmoid(w)          # sigmoid saves its output s for backward
        s.mul_(2)                     # ...which we then overwrite
        s.sum().backward()

    check.raises("in-place change of a tensor autograd saved", RuntimeError, modify_saved_output)
    s = torch.sigmoid(w) * 2          # the fix: an out-of-place op
    s.sum().backward()
    sig = torch.sigmoid(w.detach())
    check.close("fixed version's gradient = 2 s (1 - s)", w.grad, 2 * sig * (1 - sig), atol=1e-6)


def main(args) -> dict:
    run = cli.start(args, __file__)
    indexing(run)
    view_permuted, expand_bytes, repeat_bytes = views(run)
    broadcasting(run)
    einsum_section(run, TIMING_N_QUICK if run.quick else TIMING_N_FULL)
    inplace_pitfalls(run)
    return cli.finish(run, {}, answers={
        "view_permuted": (view_permuted, f"x.permute(0, 2, 1).view(2, 12) {view_permuted}: the "
                          "permuted tensor is not contiguous (the '-- view' section)"),
        "expand_bytes": (str(expand_bytes), f"col.expand(3, 1000) shares col's memory (new bytes "
                         f"{expand_bytes}); col.repeat(1, 1000) allocates {repeat_bytes} bytes"),
    })


# Predict, then run: answer in your copy (`python -m dlcourse exercise 03.02`) before running it;
# `python -m dlcourse check 03.02` compares your answers with what the run measures.
# PREDICT view_permuted (works / raises): does x.permute(0, 2, 1).view(2, 12) work on a (2, 3, 4) tensor?
# ANSWER view_permuted:
# PREDICT expand_bytes (0 / 12 / 12000): how many new bytes does a float32 (3, 1) tensor's .expand(3, 1000) allocate?
# ANSWER expand_bytes:


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
