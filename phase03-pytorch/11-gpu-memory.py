"""11 - Where GPU memory goes (phase 03, week 4)

Goal: predict, by arithmetic, the bytes of parameters, gradients, Adam's state and saved
      activations of a network; measure them (CUDA allocator statistics on a GPU, tensor sizes on
      a CPU); provoke an out-of-memory error under a memory cap and find the largest batch that fits.
Run:  python phase03-pytorch/11-gpu-memory.py            (about 10 s on a 2-core CPU or a GPU, imports included)
      python phase03-pytorch/11-gpu-memory.py --quick    (seconds, offline, used by the tests)
Expect: "[check] parameters: predicted bytes == measured: 40083496" (CPU, full; 40083968 on an H100,
        where every tensor is rounded up to 512 bytes), and the same for gradients and Adam moments;
        on an H100 a real torch.cuda.OutOfMemoryError under a 1 GiB cap, and 16,128 as the largest
        batch that trains (arithmetic bound 37,106); figure memory_breakdown.png.
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked


def parse_args(argv=None):
    return cli.parser(__doc__).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from dlcourse import check, plot
import matplotlib.pyplot as plt  # noqa: E402  (after dlcourse.plot, which picks a headless backend)

DIMS_QUICK = [256, 512, 512, 10]      # MLP layer widths in --quick: input, hidden..., classes
DIMS_FULL = [784, 2048, 2048, 2048, 10]  # and in a full run
BATCH = 256                           # examples per step for the measurements
FP32 = 4                              # bytes per float32 number
CUDA_BLOCK = 512                      # the CUDA caching allocator hands out multiples of 512 bytes
BUDGET_GIB = 1.0                      # memory cap for the out-of-memory demo and the batch search
SCALAR_SLACK = 64                     # bytes: scalars autograd may also keep (e.g. a loss's weight sum)


def make_mlp(dims):
    layers = []
    for d_in, d_out in zip(dims[:-1], dims[1:]):
        layers += [nn.Linear(d_in, d_out), nn.ReLU()]
    return nn.Sequential(*layers[:-1])                   # no ReLU after the last layer


def rounded(nbytes, device):
    """Bytes a tensor really takes: on CUDA the allocator rounds each block up to 512."""
    return CUDA_BLOCK * math.ceil(nbytes / CUDA_BLOCK) if device.type == "cuda" else nbytes


def predict(dims, batch, device):
    """Memory by arithmetic, from the layer widths alone (float32, Adam)."""
    # EXERCISE predict: params = 4 bytes x (W and b of every layer, each rounded); grads = params; Adam = 2 x params; activations = 4 B (sum of hidden widths + classes)
    shapes = [s for d_in, d_out in zip(dims[:-1], dims[1:]) for s in ((d_out, d_in), (d_out,))]
    params = sum(rounded(FP32 * math.prod(s), device) for s in shapes)   # W (out, in) and b (out,)
    # Backward needs, per hidden layer, the ReLU output (B, d) (it is also the next Linear's input),
    # and the log-softmax output (B, classes) for the loss. The network's input is already there.
    acts = sum(FP32 * batch * d for d in dims[1:-1]) + FP32 * batch * dims[-1]
    return {"parameters": params,
            "gradients": params,                          # one gradient tensor per parameter tensor
            "adam moments": 2 * params,                   # exp_avg and exp_avg_sq, same shapes again
            "activations": acts}
    # END EXERCISE


def saved_activation_bytes(model, x, y):
    """Bytes of the tensors autograd saves for backward, found with saved_tensors_hooks
    (excluding parameters and the batch itself, which exist anyway)."""
    already = {t.untyped_storage().data_ptr() for t in [*model.parameters(), x, y]}
    seen = {}

    def pack(t):                                          # called for every tensor saved for backward
        ptr = t.untyped_storage().data_ptr()
        if ptr not in already:
            seen[ptr] = t.untyped_storage().nbytes()      # one storage saved twice counts once
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = F.cross_entropy(model(x), y)
    return sum(seen.values()), loss


def measure_cpu(dims, batch):
    """Measured = sizes of the actual tensors (numel * element_size)."""
    model = make_mlp(dims)
    x, y = torch.randn(batch, dims[0]), torch.randint(0, dims[-1], (batch,))
    nbytes = lambda ts: sum(t.numel() * t.element_size() for t in ts)  # noqa: E731
    acts, loss = saved_activation_bytes(model, x, y)
    loss.backward()
    opt = torch.optim.Adam(model.parameters())
    opt.step()
    moments = [v for s in opt.state.values() for k, v in s.items() if k in ("exp_avg", "exp_avg_sq")]
    steps = [s["step"] for s in opt.state.values()]
    print(f"  (Adam also keeps {len(steps)} scalar step counters, {nbytes(steps)} bytes, on the CPU)")
    return {"parameters": nbytes(model.parameters()), "gradients": nbytes(p.grad for p in model.parameters()),
            "adam moments": nbytes(moments), "activations": acts}


def cuda_index(device):
    """'cuda' -> 'cuda:0' (the current GPU): some torch.cuda calls insist on an index."""
    return device if device.index is not None else torch.device("cuda", torch.cuda.current_device())


def measure_cuda(dims, batch, device):
    """Measured = growth of torch.cuda.memory_allocated() (live tensors, allocator-rounded)."""
    device = cuda_index(device)
    mem = lambda: torch.cuda.memory_allocated(device)   # noqa: E731
    # Warm up first: the first matmul allocates cuBLAS's workspace, which would pollute a delta.
    w = torch.ones(64, 64, device=device, requires_grad=True)
    (w @ w).sum().backward()
    del w
    torch.cuda.synchronize(device)
    out = {}
    m0 = mem()
    model = make_mlp(dims).to(device)                     # parameters land on the GPU
    out["parameters"] = mem() - m0
    x = torch.randn(batch, dims[0], device=device)
    y = torch.randint(0, dims[-1], (batch,), device=device)
    acts, loss = saved_activation_bytes(model, x, y)
    m1 = mem()
    out["activations"] = acts                             # tensor sizes of what autograd saved
    print(f"  memory_allocated grew by {m1 - m0 - out['parameters']:,} bytes in the forward pass "
          f"(batch, saved activations, logits, loss; {acts:,} bytes of it saved for backward)")
    loss.backward()                                       # frees the saved activations, allocates grads
    del loss
    m2 = mem()
    model.zero_grad(set_to_none=True)                     # drop the gradients: how much comes back?
    out["gradients"] = m2 - mem()
    F.cross_entropy(model(x), y).backward()
    opt = torch.optim.Adam(model.parameters())
    m3 = mem()
    opt.step()                                            # the first step creates Adam's state
    torch.cuda.synchronize(device)
    out["adam moments"] = mem() - m3                      # (its step counters live on the CPU)
    opt.zero_grad(set_to_none=True)
    torch.cuda.reset_peak_memory_stats(device)
    base = mem()                                          # weights + Adam state + the batch
    F.cross_entropy(model(x), y).backward()
    opt.step()
    torch.cuda.synchronize(device)
    print(f"  peak during one more training step: {torch.cuda.max_memory_allocated(device) - base:,} bytes "
          "above the resting state (activations + gradients + temporaries)")
    del model, opt, x, y
    torch.cuda.empty_cache()
    return out


def largest_batch(fits, limit=1 << 20):
    """Largest batch size b <= limit with fits(b) True, assuming fits is monotone:
    double until it fails, then bisect between the last success and the first failure."""
    # EXERCISE largest_batch: 0 if fits(1) fails; double good while 2 good <= limit fits; then bisect (good, bad) until they are adjacent
    if not fits(1):
        return 0
    good = 1
    while good * 2 <= limit and fits(good * 2):
        good *= 2
    bad = min(good * 2, limit + 1)
    while bad - good > 1:
        mid = (good + bad) // 2
        good, bad = (mid, bad) if fits(mid) else (good, mid)
    return good
    # END EXERCISE


def oom_and_batch_search(run, dims):
    budget = int(BUDGET_GIB * 2 ** 30)
    per_sample = predict(dims, 1, run.device)["activations"]
    static = sum(v for k, v in predict(dims, 1, run.device).items() if k != "activations")
    bound = (budget - static) // per_sample               # what the arithmetic allows
    print(f"\n-- out of memory and the largest batch under a {BUDGET_GIB:g} GiB budget")
    print(f"  arithmetic: ({budget:,} - {static:,} static bytes) / {per_sample:,} bytes per example "
          f"= {bound:,} examples at most")
    if run.device.type != "cuda":
        # On a CPU (or Apple MPS) there is no allocator to cap: a real out-of-memory would swap or get the process
        # killed. Run the same search against the arithmetic instead.
        found = largest_batch(lambda b: static + b * per_sample <= budget)
        check.equal("batch search on the arithmetic finds the closed-form answer", found, bound)
        print("  (on a CUDA GPU this lesson caps the allocator and searches with real out-of-memory errors)")
        return found, bound
    device = cuda_index(run.device)
    total = torch.cuda.get_device_properties(device).total_memory
    torch.cuda.empty_cache()
    torch.cuda.set_per_process_memory_fraction(budget / total, device)   # allocations past it raise
    try:
        check.raises("allocating 2x the budget in one tensor", torch.cuda.OutOfMemoryError,
                     torch.empty, 2 * budget // FP32, device=device)
        model = make_mlp(dims).to(device)
        opt = torch.optim.Adam(model.parameters())

        def fits(b):
            try:
                x = torch.randn(b, dims[0], device=device)
                y = torch.randint(0, dims[-1], (b,), device=device)
                F.cross_entropy(model(x), y).backward()
                opt.step()                                # creates Adam's state on the first success
                return True
            except torch.cuda.OutOfMemoryError:
                return False
            finally:                                      # free whatever the attempt allocated
                x = y = None
                opt.zero_grad(set_to_none=True)
                torch.cuda.empty_cache()

        found = largest_batch(fits, limit=4 * bound)
        model = opt = None                                # release before the cap is lifted
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0, device)
        torch.cuda.empty_cache()
    print(f"  largest batch that trained under the cap: {found:,} (arithmetic bound {bound:,}; the gap is "
          "temporaries such as pre-activations and the backward's buffers)")
    check.less("found batch <= arithmetic bound (the bound ignores temporaries)", found, bound, strict=False)
    check.greater("found batch is within 4x of the bound", found, bound / 4)
    return found, bound


def figure(run, dims, bound):
    batches = [2 ** k for k in range(4, 15, 2)]
    parts = [predict(dims, b, run.device) for b in batches]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    bottom = [0.0] * len(batches)
    for key in parts[0]:
        mib = [p[key] / 2 ** 20 for p in parts]
        ax.bar([str(b) for b in batches], mib, bottom=bottom, label=key)
        bottom = [a + b for a, b in zip(bottom, mib)]
    ax.axhline(BUDGET_GIB * 1024, color="red", ls="--", label=f"{BUDGET_GIB:g} GiB budget (max batch ~{bound:,})")
    ax.set(xlabel="batch size", ylabel="MiB (float32, Adam)",
           title=f"Predicted training memory of an MLP {dims}")
    ax.legend()
    plot.save(fig, run, "memory_breakdown.png")


def main(args) -> dict:
    run = cli.start(args, __file__)
    dims = DIMS_QUICK if run.quick else DIMS_FULL
    n_params = sum(d_in * d_out + d_out for d_in, d_out in zip(dims[:-1], dims[1:]))
    print("\n-- rule of thumb: float32 + Adam = 4 (weights) + 4 (grads) + 8 (moments) = 16 bytes/parameter")
    for name, n in [("this MLP", n_params), ("GPT-2 small", 124e6), ("a 7B model", 7e9)]:
        print(f"  {name:12s} {n / 1e6:9,.1f} M params -> {16 * n / 2 ** 30:8,.2f} GiB before any activation")
    print(f"\n-- predicted vs measured on {run.device.type}, batch {BATCH}")
    predicted = predict(dims, BATCH, run.device)
    measured = measure_cuda(dims, BATCH, run.device) if run.device.type == "cuda" else measure_cpu(dims, BATCH)
    for key in ("parameters", "gradients", "adam moments"):
        check.equal(f"{key}: predicted bytes == measured", measured[key], predicted[key])
    check.close("activations saved for backward: predicted vs measured (bytes)", measured["activations"],
                predicted["activations"], atol=SCALAR_SLACK)
    found, bound = oom_and_batch_search(run, dims)
    figure(run, dims, bound)
    moments_ratio = measured["adam moments"] / measured["parameters"]
    per_param = sum(measured[k] for k in ("parameters", "gradients", "adam moments")) / n_params
    return cli.finish(run, {"param_bytes": measured["parameters"], "max_batch_found": found,
                            "max_batch_bound": bound}, answers={
        "adam_ratio": (min(("1", "2", "4"), key=lambda o: abs(float(o) - moments_ratio)),
                       f"measured Adam moments {measured['adam moments']:,} bytes / parameters "
                       f"{measured['parameters']:,} bytes = {moments_ratio:.2f} (memory_breakdown.png)"),
        "bytes_per_param": (min(("8", "16", "32"), key=lambda o: abs(float(o) - per_param)),
                            f"measured weights + gradients + Adam moments / {n_params:,} parameters = "
                            f"{per_param:.2f} bytes (memory_breakdown.png)"),
    })


# Predict, then run: answer in your copy (`python -m dlcourse exercise 03.11`) before running it;
# `python -m dlcourse check 03.11` compares your answers with what the run measures.
# PREDICT adam_ratio (1 / 2 / 4): Adam's state takes how many times the bytes of the parameters it trains?
# ANSWER adam_ratio:
# PREDICT bytes_per_param (8 / 16 / 32): float32 training with Adam: weights + gradients + optimiser state, in bytes per parameter?
# ANSWER bytes_per_param:


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
