"""03 - Autograd: graphs, backward, custom Functions (phase 03, week 4)

Goal: watch autograd record a graph and run it backwards, see gradients accumulate, stop
      them with no_grad/detach, and write a custom autograd.Function that gradcheck accepts.
Run:  python phase03-pytorch/03-tensor-autograd.py            (about 9 s on a 2-core CPU, imports included)
      python phase03-pytorch/03-tensor-autograd.py --quick    (seconds, offline, used by the tests)
Expect: "[check] gradcheck(StableSoftplus): passed" and "[check] gradcheck catches a wrong
        backward: raised GradcheckError"; figure derivatives.png shows f, f' and f''.
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked


def parse_args(argv=None):
    return cli.parser(__doc__).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import torch
import torch.nn.functional as F
from torch.autograd.gradcheck import GradcheckError

from dlcourse import check, plot
import matplotlib.pyplot as plt  # noqa: E402  (after dlcourse.plot, which picks a headless backend)

N_QUICK = 8          # input size for the gradient checks in --quick
N_FULL = 64          # and in a full run (gradcheck costs one forward per input element)
FD_STEP = 1e-6       # central finite-difference step, in float64


def f(x):
    """A small scalar function with a known derivative: sum(sin(x) * x^2)."""
    return (torch.sin(x) * x ** 2).sum()


def graph_and_backward(run, n):
    print("\n-- the graph autograd records, and backward")
    x = torch.linspace(-3, 3, n, device=run.device, requires_grad=True)   # a leaf
    y = f(x)
    node, chain = y.grad_fn, []
    while node is not None:           # walk back from the output to the leaf
        chain.append(type(node).__name__)
        node = node.next_functions[0][0] if node.next_functions else None
    print(f"  y.grad_fn chain: {' <- '.join(chain)}")
    y.backward()                      # fills x.grad with dy/dx
    xd = x.detach()
    analytic = torch.cos(xd) * xd ** 2 + 2 * xd * torch.sin(xd)   # product rule
    check.close("autograd dy/dx vs analytic cos(x) x^2 + 2x sin(x)", x.grad, analytic, atol=1e-5)
    # Central differences in float64 on the CPU (MPS has no float64): (f(x+h) - f(x-h)) / 2h.
    x64 = xd.double().cpu()
    fd = torch.stack([(f(x64 + FD_STEP * e) - f(x64 - FD_STEP * e)) / (2 * FD_STEP)
                      for e in torch.eye(n, dtype=torch.float64)])
    check.close("autograd vs finite differences", x.grad, fd, atol=1e-4)
    # Second derivative: backward through the backward (create_graph=True records it).
    (g,) = torch.autograd.grad(f(x), x, create_graph=True)
    (g2,) = torch.autograd.grad(g.sum(), x)
    second = -xd ** 2 * torch.sin(xd) + 4 * xd * torch.cos(xd) + 2 * torch.sin(xd)
    check.close("second derivative via create_graph", g2, second, atol=1e-4)
    check.raises("backward() of a non-scalar needs a gradient argument", RuntimeError,
                 lambda: (x * 2).backward())


def accumulation(run):
    print("\n-- gradients accumulate: .grad += on every backward")
    w = torch.tensor([1.0, -2.0, 3.0], device=run.device, requires_grad=True)
    loss = (w ** 2).sum()
    loss.backward(retain_graph=True)  # keep the saved tensors for a second pass
    first = w.grad.clone()
    loss.backward()                   # adds, does not overwrite
    check.close("two backward passes = 2 x one pass", w.grad, 2 * first, atol=0)
    ratio = (w.grad / first).mean().item()          # for the question: 1 = overwritten, 2 = added
    twice = {1.0: "unchanged", 2.0: "doubled"}.get(ratio, "other")
    check.raises("a third pass after the graph was freed", RuntimeError, loss.backward)
    w.grad = None                     # what optimizer.zero_grad() does (set_to_none=True)
    # Accumulation is also a feature: two half-batches add up to the full batch's gradient.
    g = torch.Generator().manual_seed(run.seed)
    X = torch.randn(8, 3, generator=g).to(run.device)           # (B, 3)
    t = torch.randn(8, generator=g).to(run.device)              # (B,)
    full = torch.autograd.grad(((X @ w - t) ** 2).mean(), w)[0]
    for half in (slice(0, 4), slice(4, 8)):
        (((X[half] @ w - t[half]) ** 2).mean() / 2).backward()  # /2: mean of two halves
    check.close("grad of two half-batches accumulated = full-batch grad", w.grad, full, atol=1e-5)
    return twice, ratio


def stopping_gradients(run):
    print("\n-- no_grad, inference_mode and detach")
    x = torch.ones(3, device=run.device, requires_grad=True)
    with torch.no_grad():             # evaluation: record nothing, save memory
        y = x * 2
    check.equal("y computed under no_grad requires grad", y.requires_grad, False)
    with torch.inference_mode():      # like no_grad, plus the result can never join a graph
        z = x * 2
    check.equal("z computed under inference_mode is an inference tensor", z.is_inference(), True)
    d = x.detach()                    # same memory, cut from the graph
    check.true("detach shares storage", d.data_ptr() == x.data_ptr(), "same data_ptr")
    # x * x.detach(): the detached factor is a constant, so d/dx = x.detach(), not 2x.
    (x * x.detach()).sum().backward()
    check.close("d/dx [x * x.detach()] = x (not 2x)", x.grad, torch.ones(3), atol=0)
    return x.grad[0].item()


class StableSoftplus(torch.autograd.Function):
    """softplus(x) = log(1 + e^x), computed without overflow, with a hand-written backward.

    forward:  max(x, 0) + log1p(e^{-|x|})  (equal to log(1 + e^x), but e^{-|x|} <= 1)
    backward: d/dx softplus(x) = e^x / (1 + e^x) = sigmoid(x)
    """

    @staticmethod
    def forward(ctx, x):
        # EXERCISE softplus_forward: save x for backward, then return max(x, 0) + log1p(e^{-|x|}), which never overflows
        ctx.save_for_backward(x)      # what backward will need
        return x.clamp(min=0) + torch.log1p(torch.exp(-x.abs()))
        # END EXERCISE

    @staticmethod
    def backward(ctx, grad_out):      # grad_out = dLoss/d(output); return dLoss/d(input)
        # EXERCISE softplus_backward: d softplus/dx = sigmoid(x); the chain rule multiplies it by grad_out
        (x,) = ctx.saved_tensors
        return grad_out * torch.sigmoid(x)
        # END EXERCISE


class BrokenSoftplus(StableSoftplus):
    """The same forward with a planted bug in backward (forgot the chain rule's grad_out)."""

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return torch.sigmoid(x)


def vjp_by_finite_differences(fn, x, v):
    """v . dfn/dx by central differences, one input element at a time (float64):
    d/dx_i [v . fn(x)] ~ v . (fn(x + h e_i) - fn(x - h e_i)) / 2h. What gradcheck does, spelled out.
    (Subtract before the dot product: summing first would add the rounding of the whole sum.)"""
    x = x.detach()
    return torch.stack([(v * (fn(x + FD_STEP * e) - fn(x - FD_STEP * e))).sum() / (2 * FD_STEP)
                        for e in torch.eye(len(x), dtype=x.dtype)])


def custom_function(run, n):
    print("\n-- a custom autograd.Function")
    # gradcheck compares the backward with finite differences; it needs float64 (on the CPU).
    g = torch.Generator().manual_seed(run.seed)
    x64 = (3 * torch.randn(n, dtype=torch.float64, generator=g)).requires_grad_()  # both signs
    # raise_exception=False: a wrong backward then fails this check instead of crashing.
    passed = torch.autograd.gradcheck(StableSoftplus.apply, (x64,), eps=1e-6, atol=1e-5,
                                      raise_exception=False)
    check.true("gradcheck(StableSoftplus)", passed, "passed (analytic vs numerical Jacobian)")
    # The same test by hand, with a random upstream gradient v (not all ones, which would
    # hide a backward that forgets to multiply by grad_out): backward gives v . J.
    v = torch.randn(n, dtype=torch.float64, generator=g)
    (vjp,) = torch.autograd.grad(StableSoftplus.apply(x64), x64, grad_outputs=v)
    # Error of the differences: rounding ~ eps |f| |v| / h ~ 1e-9 here, truncation ~ h^2 ~ 1e-12.
    check.close("StableSoftplus backward(v) vs central differences of v . f(x)", vjp,
                vjp_by_finite_differences(StableSoftplus.apply, x64, v), atol=1e-7)
    check.raises("gradcheck catches a wrong backward", GradcheckError,
                 torch.autograd.gradcheck, lambda t: BrokenSoftplus.apply(t) * 3, (x64,),
                 eps=1e-6, atol=1e-5)
    x = torch.linspace(-20, 20, 41, device=run.device, requires_grad=True)
    ours = StableSoftplus.apply(x)
    ours.sum().backward()
    check.close("StableSoftplus vs F.softplus", ours, F.softplus(x), atol=1e-6, rtol=1e-6)
    check.close("its gradient vs sigmoid", x.grad, torch.sigmoid(x.detach()), atol=1e-6)
    big = torch.tensor([100.0], device=run.device)
    naive = torch.log(1 + torch.exp(big))          # e^100 overflows float32 -> inf
    check.true("naive log(1 + e^x) overflows at x = 100, ours does not",
               torch.isinf(naive).item() and StableSoftplus.apply(big).item() == 100.0,
               f"naive {naive.item()}, stable {StableSoftplus.apply(big).item()}")


def derivative_figure(run):
    x = torch.linspace(-4, 4, 200, requires_grad=True)
    y = torch.sin(x) * x ** 2
    (d1,) = torch.autograd.grad(y.sum(), x, create_graph=True)
    (d2,) = torch.autograd.grad(d1.sum(), x)
    fig, ax = plt.subplots(figsize=(7, 4))
    for values, label in [(y, "f(x) = sin(x) x²"), (d1, "f'(x) by autograd"), (d2, "f''(x) by autograd")]:
        ax.plot(x.detach(), values.detach(), label=label)
    ax.axhline(0, color="grey", lw=0.5)
    ax.set(xlabel="x", title="Autograd gives derivatives of any order")
    ax.legend()
    plot.save(fig, run, "derivatives.png")


def main(args) -> dict:
    run = cli.start(args, __file__)
    n = N_QUICK if run.quick else N_FULL
    graph_and_backward(run, n)
    twice, ratio = accumulation(run)
    detached_grad = stopping_gradients(run)
    custom_function(run, n)
    derivative_figure(run)
    return cli.finish(run, {"gradcheck_inputs": n}, answers={
        "second_backward": (twice, f"w.grad after two backward passes / after one = {ratio:g} "
                            "(the '-- gradients accumulate' section)"),
        "detach_grad": ({1.0: "1", 2.0: "2", 0.0: "0"}.get(detached_grad, "other"),
                        f"x = 1: d/dx [x * x.detach()] = {detached_grad:g} (the '-- no_grad' section)"),
    })


# Predict, then run: answer in your copy (`python -m dlcourse exercise 03.03`) before running it;
# `python -m dlcourse check 03.03` compares your answers with what the run measures.
# PREDICT second_backward (unchanged / doubled): a second loss.backward() (with retain_graph=True, no zero_grad) leaves w.grad how?
# ANSWER second_backward:
# PREDICT detach_grad (0 / 1 / 2): at x = 1, what gradient does (x * x.detach()).sum().backward() put in x.grad?
# ANSWER detach_grad:


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
