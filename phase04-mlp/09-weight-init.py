"""09 - Weight initialisation: vanishing and exploding (phase 04, week 5)

Goal: write zero, normal, Xavier and He initialisation, push a batch through a 50-layer stack
      for each, and watch the signal vanish, explode or (with He for ReLU) stay put.
Run:  python phase04-mlp/09-weight-init.py            (about 3 s on a 2-core CPU)
      python phase04-mlp/09-weight-init.py --quick    (seconds, offline, used by the tests)
Expect: measured per-layer growth of the activation RMS matches theory sqrt(c/2) within 1%
        (He 0.998 vs 1, Xavier 0.706 vs 0.707, nn.Linear default 0.405 vs 0.408, N(0, 1) 11.26
        vs 11.31; seed 0, full); N(0, 1) + ReLU overflows float32 to inf at layer 17; with He
        every layer's mean square stays in [0.68, 1.02] x layer 1's; see init_stats.png.
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

from dlcourse import check, data, plot
import matplotlib.pyplot as plt  # after dlcourse.plot, which picks a headless backend

DEPTH = 50           # layers in the stack (--quick: 20)
WIDTH = 256          # units per layer, and the input size (--quick: 128)
BATCH = 32           # random inputs pushed through each network (--quick: 16)
NETS = 8             # independent random networks pooled for the statistics
HE_BOUND = 3.0       # He + ReLU: every layer's mean square within this factor of layer 1's
THEORY_RTOL = 0.05   # measured per-layer growth vs theory (finite width adds noise)
FAN_IN, FAN_OUT = 1200, 300  # the matrix compared with torch.nn.init: far from square
SIGMAS = 5           # statistical checks allow 5 standard errors


# Each init returns a (fan_out, fan_in) weight matrix. `c` below is fan_in * Var(w): with
# ReLU, E[h_l^2] = (c / 2) E[h_{l-1}^2] (half the pre-activations are zeroed), so the RMS
# grows by sqrt(c / 2) per layer; only c = 2 (He) keeps it constant.
def zero_init(fan_out, fan_in, gen):
    return torch.zeros(fan_out, fan_in)


def normal_init(std):
    def init(fan_out, fan_in, gen):
        return torch.randn(fan_out, fan_in, generator=gen) * std
    return init


def xavier_normal(fan_out, fan_in, gen):
    """Glorot & Bengio (2010): Var(w) = 2 / (fan_in + fan_out) keeps the variance of both
    the forward signal and the backward gradient for a linear (or tanh near 0) layer."""
    # EXERCISE xavier_normal: a (fan_out, fan_in) standard normal draw from gen, scaled to Var(w) = 2 / (fan_in + fan_out)
    return torch.randn(fan_out, fan_in, generator=gen) * math.sqrt(2 / (fan_in + fan_out))
    # END EXERCISE


def he_normal(fan_out, fan_in, gen):
    """He et al. (2015): Var(w) = 2 / fan_in, the factor 2 making up for ReLU's zeros."""
    # EXERCISE he_normal: a (fan_out, fan_in) standard normal draw from gen, scaled to Var(w) = 2 / fan_in
    return torch.randn(fan_out, fan_in, generator=gen) * math.sqrt(2 / fan_in)
    # END EXERCISE


def linear_default(fan_out, fan_in, gen):
    """What nn.Linear does unless told otherwise: U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
    i.e. Var(w) = 1 / (3 fan_in): c = 1/3, too small for a deep ReLU stack."""
    # EXERCISE linear_default: uniform on (-1/sqrt(fan_in), 1/sqrt(fan_in)) from gen's torch.rand, shape (fan_out, fan_in)
    bound = 1 / math.sqrt(fan_in)
    return (torch.rand(fan_out, fan_in, generator=gen) * 2 - 1) * bound
    # END EXERCISE


# (label, init, activation, c as a function of the width, or None where no simple theory)
CONFIGS = [
    ("zero, ReLU", zero_init, torch.relu, lambda n: 0.0),
    ("N(0, 0.01^2), ReLU", normal_init(0.01), torch.relu, lambda n: n * 0.01 ** 2),
    ("N(0, 1), ReLU", normal_init(1.0), torch.relu, lambda n: n * 1.0),
    ("nn.Linear default, ReLU", linear_default, torch.relu, lambda n: 1 / 3),
    ("Xavier, ReLU", xavier_normal, torch.relu, lambda n: 1.0),   # 2/(n + n) * n
    ("He, ReLU", he_normal, torch.relu, lambda n: 2.0),
    ("Xavier, tanh", xavier_normal, torch.tanh, None),             # tanh squashes: no c/2 law
    ("N(0, 1), tanh", normal_init(1.0), torch.tanh, None),
]


def check_against_torch_init():
    """Our std formulas vs torch.nn.init (and nn.Linear's default) on a FAN_OUT x FAN_IN
    matrix. Not square: with fan_in == fan_out, an init that used the wrong one would pass.
    The sample std of n values has a relative standard error of at most 1/sqrt(2n) (normal;
    uniform: less), and each side has its own sample, so the tolerance is SIGMAS of the
    difference's standard error: SIGMAS * sqrt(2 / (2n))."""
    gen = torch.Generator().manual_seed(12345)   # not the global seed: independent samples
    pairs = {
        "Xavier normal vs nn.init.xavier_normal_":
            (xavier_normal, lambda w: nn.init.xavier_normal_(w)),
        "He normal vs nn.init.kaiming_normal_(relu)":
            (he_normal, lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu")),
        f"nn.Linear default vs nn.Linear({FAN_IN}, {FAN_OUT}).weight":
            (linear_default, lambda w: w.copy_(nn.Linear(FAN_IN, FAN_OUT).weight)),
    }
    rtol = SIGMAS * math.sqrt(2 / (2 * FAN_IN * FAN_OUT))
    for name, (ours, ref) in pairs.items():
        w = ours(FAN_OUT, FAN_IN, gen)
        with torch.no_grad():
            ref_w = ref(torch.empty(FAN_OUT, FAN_IN))    # torch's layout: (out, in)
        check.equal(f"shape (fan_out, fan_in): {name}", tuple(w.shape), tuple(ref_w.shape))
        check.close(f"std: {name}", w.std(), ref_w.std(), rtol=rtol)


def run_stack(init, act, depth, width, batch, device, seed):
    """Forward N(0, 1) inputs through NETS independent random stacks of `depth` layers,
    h = act(h W^T), then backward from a random projection of the output. Returns per-layer
    RMS of the activations and of dL/d(activation), and each layer's largest |dL/dW|.

    The theory is about the expectation over random weights; one finite-width network
    wanders around it (each layer multiplies the mean square by a random factor near its
    expectation), so the statistics are pooled over NETS networks, run as one batched matmul.
    """
    gen = torch.Generator().manual_seed(seed)
    weights = [torch.stack([init(width, width, gen) for _ in range(NETS)]).to(device)
               .requires_grad_(True) for _ in range(depth)]           # each (NETS, out, in)
    h = torch.randn(NETS, batch, width, generator=gen).to(device)    # (NETS, B, width)
    acts = []
    for w in weights:
        h = act(h @ w.transpose(1, 2))                                # (NETS, B, width); no bias
        h.retain_grad()                                               # keep dL/dh for the stats
        acts.append(h)
    probe = torch.randn(NETS, batch, width, generator=gen).to(device)
    (h * probe).sum().backward()                                      # a random upstream gradient
    rms = lambda t: t.detach().pow(2).mean().sqrt().item()  # noqa: E731
    return ([rms(a) for a in acts], [rms(a.grad) for a in acts],
            [w.grad.abs().max().item() for w in weights])


def growth(values):
    """Geometric-mean factor per layer over the layers whose RMS is a normal float."""
    ok = [(i, v) for i, v in enumerate(values) if 1e-30 < v < 1e30]
    (i0, v0), (i1, v1) = ok[0], ok[-1]
    return (v1 / v0) ** (1 / (i1 - i0))


def drawable(values):
    """0 (underflow) and inf/nan (overflow) have no place on a log axis: leave gaps."""
    return [v if 0 < v < math.inf else math.nan for v in values]


def main(args) -> dict:
    run = cli.start(args, __file__)
    data.announce("random N(0, 1) inputs and random weights (no data set)", kind="generated")
    depth, width, batch = (20, 128, 16) if run.quick else (DEPTH, WIDTH, BATCH)
    check_against_torch_init()

    stats = {}
    print(f"{'init, activation':26s} {'RMS layer 1':>11s} {'RMS last':>10s} {'grad RMS 1':>10s} "
          f"{'growth/layer':>12s} {'theory':>7s}")
    for label, init, act, c_of in CONFIGS:
        act_rms, grad_rms, wgrad = run_stack(init, act, depth, width, batch, run.device, run.seed)
        theory = math.sqrt(c_of(width) / 2) if c_of else None
        stats[label] = (act_rms, grad_rms, wgrad, theory)
        measured = growth(act_rms) if any(v > 0 for v in act_rms) else 0.0
        print(f"{label:26s} {act_rms[0]:11.3g} {act_rms[-1]:10.3g} {grad_rms[0]:10.3g} "
              f"{measured:12.4f} {theory if theory is not None else float('nan'):7.4f}")
        if theory:
            check.close(f"{label}: measured RMS growth per layer vs sqrt(c/2)", measured, theory,
                        rtol=THEORY_RTOL)

    he = torch.tensor(stats["He, ReLU"][0]) ** 2                # mean squares per layer
    ratio = he / he[0]
    check.true(f"He + ReLU keeps every layer's mean square within x{HE_BOUND:g} of layer 1",
               bool(((ratio < HE_BOUND) & (ratio > 1 / HE_BOUND)).all()),
               f"ratios over {depth} layers in [{ratio.min():.2f}, {ratio.max():.2f}]")
    over = [i + 1 for i, v in enumerate(stats["N(0, 1), ReLU"][0]) if not math.isfinite(v)]
    print("N(0, 1), ReLU: " + (f"overflowed float32 to inf at layer {over[0]}" if over else
                               f"largest RMS {max(stats['N(0, 1), ReLU'][0]):.3g}"))
    check.less("N(0, 0.01^2) + ReLU vanishes: last-layer RMS / first",
               stats["N(0, 0.01^2), ReLU"][0][-1] / stats["N(0, 0.01^2), ReLU"][0][0], 1e-6)
    # Zero init: every unit computes the same thing (0), and no hidden weight gets gradient
    # (dL/dW_l involves h_{l-1} = 0 or W_{l+1} = 0), so training could never break symmetry.
    check.equal("zero init: largest |gradient| of any weight", max(stats["zero, ReLU"][2]), 0.0)

    fig, axes = plt.subplots(1, 2, figsize=(15, 5.2), sharex=True)
    layers = range(1, depth + 1)
    for label, (act_rms, grad_rms, _, _) in stats.items():
        if label.startswith("zero"):
            continue                                            # all zeros: no log-scale line
        style = "--" if "tanh" in label else "-"
        lw = 3 if label.startswith("He") else 1.5
        axes[0].plot(layers, drawable(act_rms), style, lw=lw, label=label)
        axes[1].plot(layers, drawable(grad_rms), style, lw=lw, label=label)
    axes[0].set(xlabel="layer", ylabel="RMS of activations", yscale="log",
                title="forward: activation size per layer\n(zero init: all 0; lines end at "
                      "float32 underflow to 0 or overflow to inf)")
    axes[1].set(xlabel="layer", ylabel="RMS of dL/d(activation)", yscale="log",
                title="backward: gradient size per layer")
    axes[0].legend(fontsize=8)
    plot.save(fig, run, "init_stats.png")
    xavier_growth = growth(stats["Xavier, ReLU"][0])
    return cli.finish(run, {"he_ratio_min": ratio.min().item(), "he_ratio_max": ratio.max().item(),
                            "xavier_relu_growth": growth(stats["Xavier, ReLU"][0]),
                            "normal1_overflow_layer": over[0] if over else 0}, answers={
        "xavier_relu": (min(("shrinks", "stays", "grows"), key=lambda o: abs(
                            {"shrinks": -1, "stays": 0, "grows": 1}[o] - 20 * math.log(xavier_growth))),
                        f"Xavier + ReLU: RMS x {xavier_growth:.4f} per layer over {depth} layers "
                        "(init_stats.png, left)"),
        "zero_init_grad": ("yes" if max(stats["zero, ReLU"][2]) > 0 else "no",
                           f"zero init: largest |dL/dW| of any layer {max(stats['zero, ReLU'][2]):g}"),
    })


# Predict, then run: answer in your copy (`python -m dlcourse exercise 04.09`) before running it;
# `python -m dlcourse check 04.09` compares your answers with what the run measures.
# PREDICT xavier_relu (shrinks / stays / grows): Xavier init in a deep ReLU stack: what does the activations' RMS do from layer to layer?
# ANSWER xavier_relu:
# PREDICT zero_init_grad (yes / no): all weights initialised to zero: does any weight get a nonzero gradient?
# ANSWER zero_init_grad:


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
