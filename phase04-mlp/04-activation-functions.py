"""04 - Activation functions and their derivatives (phase 04, week 5)

Goal: write ReLU, LeakyReLU, Sigmoid, Tanh, GELU (exact and tanh form) and SiLU with their
      derivatives by hand, check them against torch, and see where each one's gradient dies.
Run:  python phase04-mlp/04-activation-functions.py            (about 2 s on a 2-core CPU)
      python phase04-mlp/04-activation-functions.py --quick    (a coarser grid; used by the tests)
Expect: every "[check] <name> value/derivative vs torch" passes with max |diff| <= 1e-15
        (float64); the table shows sigmoid' <= 0.25 and sigmoid'(5) = 0.0066; activations.png
        plots each function (solid) and its derivative (dashed).
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked


def parse_args(argv=None):
    return cli.parser(__doc__).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import math

import torch
import torch.nn.functional as F

from dlcourse import check, data, plot
import matplotlib.pyplot as plt  # after dlcourse.plot, which picks a headless backend

NEG_SLOPE = 0.1      # LeakyReLU slope for x < 0 (torch's default is 0.01; 0.1 shows in plots)
GELU_C = 0.044715    # cubic coefficient of GELU's tanh approximation (Hendrycks & Gimpel)
X_RANGE = 6.0        # plot and test on [-X_RANGE, X_RANGE] ...
EXTREMES = [0.0, -30.0, 30.0, -1e3, 1e3]  # ... plus 0 (the kink) and values that overflow exp
GRID = 2401          # grid points (a step of 0.005) ...
QUICK_GRID = 241     # ... --quick: a step of 0.05


def sigmoid(x):
    """sigma(x) = 1 / (1 + e^-x), computed from e^-|x| <= 1 so that exp never overflows."""
    # EXERCISE sigmoid: with z = e^{-|x|}, return 1 / (1 + z) where x >= 0 and z / (1 + z) elsewhere
    z = torch.exp(-x.abs())
    return torch.where(x >= 0, 1 / (1 + z), z / (1 + z))
    # END EXERCISE


def std_normal_cdf(x):
    return 0.5 * (1 + torch.erf(x / math.sqrt(2)))       # Phi(x)


def gelu_tanh_grad(x):
    """d/dx of x/2 (1 + tanh u) = (1 + tanh u)/2 + x/2 (1 - tanh^2 u) du/dx."""
    k = math.sqrt(2 / math.pi)
    t = torch.tanh(k * (x + GELU_C * x ** 3))
    return 0.5 * (1 + t) + 0.5 * x * (1 - t ** 2) * k * (1 + 3 * GELU_C * x ** 2)


def activations():
    """Each entry: (scratch f, scratch f', torch's f). Derivatives are written from calculus;
    at ReLU's kink x = 0 we follow torch's convention (derivative 0; LeakyReLU: the slope)."""
    # EXERCISE activations: for each name, (f, f', torch's f): write f and its derivative from calculus, e.g. sigmoid' = sigmoid (1 - sigmoid); ReLU' = 0 at x = 0
    return {
        "ReLU": (lambda x: torch.where(x > 0, x, torch.zeros_like(x)),
                 lambda x: (x > 0).to(x.dtype),
                 F.relu),
        "LeakyReLU": (lambda x: torch.where(x > 0, x, NEG_SLOPE * x),
                      lambda x: torch.where(x > 0, torch.ones_like(x), torch.full_like(x, NEG_SLOPE)),
                      lambda x: F.leaky_relu(x, NEG_SLOPE)),
        # sigma' = sigma (1 - sigma): at most 1/4, at x = 0
        "Sigmoid": (sigmoid,
                    lambda x: sigmoid(x) * (1 - sigmoid(x)),
                    torch.sigmoid),
        # tanh(x) = 2 sigma(2x) - 1, so it inherits the overflow-safe sigmoid; tanh' = 1 - tanh^2
        "Tanh": (lambda x: 2 * sigmoid(2 * x) - 1,
                 lambda x: 1 - (2 * sigmoid(2 * x) - 1) ** 2,
                 torch.tanh),
        # GELU(x) = x Phi(x): the input scaled by how likely a standard normal is below it.
        # GELU' = Phi(x) + x phi(x), with phi the standard normal density
        "GELU": (lambda x: x * std_normal_cdf(x),
                 lambda x: std_normal_cdf(x) + x * torch.exp(-x ** 2 / 2) / math.sqrt(2 * math.pi),
                 F.gelu),
        # GELU ~ x/2 (1 + tanh(u)), u = sqrt(2/pi) (x + c x^3): GPT-2's cheaper form
        "GELU (tanh)": (lambda x: 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi)
                                                            * (x + GELU_C * x ** 3))),
                        gelu_tanh_grad,
                        lambda x: F.gelu(x, approximate="tanh")),
        # SiLU (swish) = x sigma(x); SiLU' = sigma(x) (1 + x (1 - sigma(x)))
        "SiLU": (lambda x: x * sigmoid(x),
                 lambda x: sigmoid(x) * (1 + x * (1 - sigmoid(x))),
                 F.silu),
    }
    # END EXERCISE


def torch_derivative(fn, x):
    """f'(x) for every element via autograd: the gradient of sum(f(x)) is f' elementwise."""
    x = x.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(fn(x).sum(), x)
    return grad


def main(args) -> dict:
    run = cli.start(args, __file__)
    ACTIVATIONS = activations()                          # (scratch f, scratch f', torch's f) by name
    data.announce("an evenly spaced grid of inputs plus extreme values (no data set)",
                  kind="generated")
    n = QUICK_GRID if run.quick else GRID
    grid = torch.linspace(-X_RANGE, X_RANGE, n, dtype=torch.float64)
    x = torch.cat([grid, torch.tensor(EXTREMES, dtype=torch.float64)])  # float64 on CPU

    # 1) Values and derivatives in float64 against torch's own functions and autograd.
    #    Tolerance 1e-12: both sides are float64, so only rounding (~1e-16 relative) differs.
    for name, (f, df, ref) in ACTIVATIONS.items():
        check.close(f"{name} value vs torch", f(x), ref(x), atol=1e-12, rtol=1e-12)
        check.close(f"{name} derivative vs torch autograd", df(x), torch_derivative(ref, x),
                    atol=1e-12, rtol=1e-12)

    # 2) The same scratch functions in float32 on the run's device (what a model would use)
    #    against the float64 reference: float32 keeps ~7 significant digits.
    x32 = grid.float().to(run.device)
    worst = max((f(x32).cpu().double() - ref(grid)).abs().max().item()
                for f, _, ref in ACTIVATIONS.values())
    check.less(f"float32 on {run.device.type} vs float64 reference, worst of all functions",
               worst, 1e-5)

    # 3) What the derivatives mean for training: a gradient passing through L layers is
    #    multiplied by L such factors, so max f' < 1 (sigmoid, tanh away from 0) shrinks it.
    print(f"{'activation':12s} {'max f`':>8s} {'f`(-5)':>9s} {'f`(5)':>9s}  "
          f"{'f`(5)^10':>9s}  (a gradient through 10 layers all at x=5)")
    rows = {}
    for name, (_, df, _) in ACTIVATIONS.items():
        d = df(grid)
        at = df(torch.tensor([-5.0, 5.0], dtype=torch.float64))
        rows[name] = {"max_grad": d.max().item(), "grad_at_5": at[1].item()}
        print(f"{name:12s} {d.max().item():8.4f} {at[0].item():9.4f} {at[1].item():9.4f}  "
              f"{at[1].item() ** 10:9.2e}")
    check.close("sigmoid' peaks at 1/4 (at x = 0)", rows["Sigmoid"]["max_grad"], 0.25, atol=1e-12)

    fig, axes = plt.subplots(2, 4, figsize=(16, 7), sharex=True)
    xs = grid.numpy()
    for ax, (name, (f, df, _)) in zip(axes.flat, ACTIVATIONS.items()):
        ax.axhline(0, color="0.8", lw=0.8)
        ax.axvline(0, color="0.8", lw=0.8)
        ax.plot(xs, f(grid).numpy(), lw=2, label="f(x)")
        ax.plot(xs, df(grid).numpy(), "--", lw=2, label="f'(x)")
        ax.set(title=name, ylim=(-1.6, 3.2))
        ax.legend(loc="upper left", fontsize=8)
    ax = axes.flat[-1]                                    # all derivatives on one panel
    for name, (_, df, _) in ACTIVATIONS.items():
        ax.plot(xs, df(grid).numpy(), label=name)
    ax.set(title="all derivatives: where is the gradient ~0?", ylim=(-0.2, 1.3))
    ax.legend(fontsize=7)
    for ax in axes[1]:
        ax.set_xlabel("x")
    plot.save(fig, run, "activations.png")
    return cli.finish(run, {"sigmoid_grad_at_5": rows["Sigmoid"]["grad_at_5"],
                            "tanh_grad_at_5": rows["Tanh"]["grad_at_5"],
                            "float32_worst_diff": worst}, answers={
        "sigmoid_peak": (min(("1", "2", "4"), key=lambda o: abs(1 / float(o) - rows["Sigmoid"]["max_grad"])),
                         f"largest sigmoid' on the grid: {rows['Sigmoid']['max_grad']:.4f} (activations.png)"),
        "flattest_at_5": (min(("sigmoid", "tanh", "gelu"), key=lambda o: {"sigmoid": rows["Sigmoid"],
                          "tanh": rows["Tanh"], "gelu": rows["GELU"]}[o]["grad_at_5"]),
                          "f'(5): " + ", ".join(f"{k} {rows[k]['grad_at_5']:.2e}" for k in ("Sigmoid", "Tanh", "GELU"))
                          + " (activations.png, last panel)"),
    })


# Predict, then run: answer in your copy (`python -m dlcourse exercise 04.04`) before running it;
# `python -m dlcourse check 04.04` compares your answers with what the run measures.
# PREDICT sigmoid_peak (1 / 2 / 4): the largest value of the sigmoid's derivative is 1/k: k = ?
# ANSWER sigmoid_peak:
# PREDICT flattest_at_5 (sigmoid / tanh / gelu): at x = 5, which activation passes the smallest gradient?
# ANSWER flattest_at_5:


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
