"""02 - Backpropagation through time by hand (phase 06, week 8)

Goal: write the backward pass of a tanh RNN with a readout and a loss at every step, through
      time, by hand (dL/dW_ih, dL/dW_hh, dL/db, dL/dW_out, dL/db_out, dL/dh0, dL/dx), prove it
      equals autograd, then truncate it: chunks of k steps with the state carried forward but
      its gradient cut, as a training loop does. The gradient stops exactly at the cut, and a
      task whose answer lies further back than k steps cannot be learnt with that k.
Run:  python phase06-rnn/02-bptt.py            (400 steps per model; 12 s on a busy 2-core CPU)
      python phase06-rnn/02-bptt.py --quick    (seconds, offline, used by the tests)
Expect: hand BPTT vs autograd, every gradient, max |diff| ~1e-16 (float64); the truncated
        gradient of the last chunk's loss is exactly 0 before the cut and non-zero inside it;
        on the delay task (repeat the symbol seen DELAY steps ago) full BPTT and k > DELAY reach
        validation accuracy ~1.0, k < DELAY stays far below (seed 0 full: 1.00 / 1.00 / 0.29;
        quick, seeds 0-4: k=3 at 0.33-0.42);
        bptt.png shows where the gradient reaches and the three training curves.
"""
from dlcourse import cli

STEPS = 400          # optimiser steps per model in the training comparison (full run)
QUICK_STEPS = 150    # --quick


def parse_args(argv=None):
    return cli.parser(__doc__, steps=(STEPS, QUICK_STEPS)).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # a mistyped flag fails here, before torch loads

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from dlcourse import check, data, plot
import matplotlib.pyplot as plt  # after dlcourse.plot, which picks the headless backend

# Gradient checks: every size different, so a transposed or swapped matrix cannot fit.
B, I, H, V = 3, 5, 7, 4   # batch, input features, hidden units, output classes
T = 9                     # time steps of the full-BPTT check
T_LONG, K_CHECK = 12, 5   # truncation check: steps, chunk length (K_CHECK does not divide T_LONG,
                          # so the last chunk is shorter: that branch is exercised too)
TOL = 1e-10               # float64: hand and autograd differ only by rounding (~1e-16)

# Training comparison: the delay task. Inputs are random symbols (one-hot); the target at
# step t is the symbol seen DELAY steps earlier. No target for the first DELAY steps.
N_SYMBOLS = 4        # vocabulary of the delay task (chance accuracy 1/4)
DELAY = 4            # how far back the answer lies (steps)
SEQ_LEN = 24         # steps per training sequence; both chunk sizes below divide it
K_SHORT = 3          # truncation shorter than DELAY: no gradient path reaches the answer
K_LONG = 8           # truncation longer than DELAY: in-chunk paths of length DELAY exist
HIDDEN = 24          # hidden units of the trained RNN
BATCH = 32           # sequences per optimiser step
LR = 1e-2            # Adam learning rate
N_VAL = 512          # validation sequences (accuracy on steps with a target)
EVAL_EVERY = 10      # steps between validation measurements
MARGIN = 0.25        # k > DELAY must beat k < DELAY by this much validation accuracy


def init_params(n_in, n_hidden, n_out, gen, dtype=torch.float32):
    """nn.RNN's initialisation: every weight uniform in +-1/sqrt(hidden)."""
    bound = 1 / math.sqrt(n_hidden)

    def uniform(*shape):
        return (torch.rand(*shape, generator=gen, dtype=dtype) * 2 - 1) * bound

    return {"W_ih": uniform(n_hidden, n_in), "W_hh": uniform(n_hidden, n_hidden),
            "b": uniform(n_hidden), "W_out": uniform(n_out, n_hidden), "b_out": uniform(n_out)}


def rnn_forward(p, x, h0):
    """h_t = tanh(x_t W_ih^T + h_{t-1} W_hh^T + b), logits_t = h_t W_out^T + b_out.
    x (B, T, I), h0 (B, H) -> logits (B, T, V), hs (B, T+1, H) with hs[:, 0] = h0: every state
    is kept, because the backward pass needs h_{t-1} and h_t at each step."""
    hs = [h0]
    for t in range(x.shape[1]):
        hs.append(torch.tanh(x[:, t] @ p["W_ih"].T + hs[-1] @ p["W_hh"].T + p["b"]))  # (B, H)
    hs = torch.stack(hs, dim=1)                                    # (B, T+1, H)
    return hs[:, 1:] @ p["W_out"].T + p["b_out"], hs               # (B, T, V), (B, T+1, H)


def cross_entropy(logits, y, n=None):
    """Loss = sum over steps with a target (y >= 0; -1 = no target) of -log softmax(logits)[y],
    divided by n (default: the number of targets). Returns the loss and dL/dlogits, which for
    softmax + cross-entropy is (softmax - one_hot) / n at every scored step, 0 elsewhere."""
    scored = (y >= 0).to(logits.dtype)                             # (B, T)
    n = scored.sum() if n is None else n
    logp = logits.log_softmax(dim=-1)                              # (B, T, V)
    target = y.clamp(min=0)
    nll = -logp.gather(-1, target[..., None])[..., 0]              # (B, T)
    loss = (nll * scored).sum() / n
    d_logits = (logp.exp() - F.one_hot(target, logits.shape[-1]).to(logits.dtype)) \
        * scored[..., None] / n                                    # (B, T, V)
    return loss, d_logits


def rnn_backward(p, x, hs, d_logits):
    """Backpropagation through time. z_t is the pre-activation, h_t = tanh(z_t). h_t feeds two
    places, the readout at step t and the next state h_{t+1}, so its gradient is the sum
        dL/dh_t = dL/dlogits_t W_out + dL/dz_{t+1} W_hh,
    computed from the last step backwards; then dL/dz_t = dL/dh_t * (1 - h_t^2). The weights
    are shared by all steps, so their gradients are sums over t of each step's part.
    Returns a dict with one gradient per parameter, plus 'h0' and 'x'."""
    # EXERCISE rnn_backward: from the last step back: dL/dh_t = dlogits_t W_out + dL/dz_{t+1} W_hh, dL/dz_t = dL/dh_t (1 - h_t^2); sum each step's dz^T x_t, dz^T h_{t-1}, dz into the shared weights' gradients
    _, n_steps, _ = x.shape
    g = {name: torch.zeros_like(v) for name, v in p.items()}
    g["W_out"] = d_logits.flatten(0, 1).T @ hs[:, 1:].flatten(0, 1)   # (V, B*T) @ (B*T, H)
    g["b_out"] = d_logits.sum(dim=(0, 1))
    d_x = torch.zeros_like(x)
    d_h_next = torch.zeros_like(hs[:, 0])        # dL/dh_t via h_{t+1}: none after the last step
    for t in reversed(range(n_steps)):
        h, h_prev = hs[:, t + 1], hs[:, t]
        d_h = d_logits[:, t] @ p["W_out"] + d_h_next          # (B, H): readout + the future
        d_z = d_h * (1 - h ** 2)                              # tanh'(z) = 1 - tanh(z)^2
        g["W_ih"] += d_z.T @ x[:, t]                          # (H, B) @ (B, I)
        g["W_hh"] += d_z.T @ h_prev                           # (H, B) @ (B, H): h_{t-1}, not h_t
        g["b"] += d_z.sum(dim=0)
        d_x[:, t] = d_z @ p["W_ih"]                           # (B, I)
        d_h_next = d_z @ p["W_hh"]                            # becomes dL/dh_{t-1}
    g["h0"] = d_h_next                                        # the initial state is an input too
    g["x"] = d_x
    return g
    # END EXERCISE


def truncated_bptt(p, x, y, h0, k):
    """Run the sequence in chunks of k steps. The state goes from one chunk to the next as a
    value; its gradient does not (a training loop's h = h.detach()), so each chunk's backward
    starts with dL/dh = 0 at its end and stops at its start. Every chunk's loss is divided by
    the whole sequence's number of targets, so the chunk losses add up to the full loss, and
    the summed gradients are what autograd gives for that loss with the detach in the graph.
    k >= T is full BPTT. Returns the loss and the gradients (parameters, 'h0', 'x')."""
    # EXERCISE truncated_bptt: chunks of k steps: forward from the carried h, loss over the WHOLE sequence's target count, rnn_backward; sum the weight gradients, keep each chunk's dL/dx, dL/dh0 from the first chunk only; h = the chunk's last state
    n = (y >= 0).sum().to(x.dtype)
    grads = {name: torch.zeros_like(v) for name, v in p.items()}
    grads["x"] = torch.zeros_like(x)
    total, h = 0.0, h0
    for start in range(0, x.shape[1], k):
        chunk = slice(start, start + k)
        logits, hs = rnn_forward(p, x[:, chunk], h)
        loss, d_logits = cross_entropy(logits, y[:, chunk], n)
        g = rnn_backward(p, x[:, chunk], hs, d_logits)
        for name in p:
            grads[name] += g[name]
        grads["x"][:, chunk] = g["x"]
        if start == 0:
            grads["h0"] = g["h0"]   # only the first chunk reaches h0; later chunks' g['h0'] is cut
        h = hs[:, -1]               # the state carries on into the next chunk
        total = total + loss
    return total, grads
    # END EXERCISE


def autograd_grads(p, x, y, h0, k=None):
    """The reference: the same forward and loss, gradients by autograd; with k, the state is
    detached every k steps, exactly as a truncated-BPTT training loop does."""
    leaves = {name: v.clone().requires_grad_(True) for name, v in p.items()}
    leaves["h0"], leaves["x"] = h0.clone().requires_grad_(True), x.clone().requires_grad_(True)
    h, logits = leaves["h0"], []
    for t in range(x.shape[1]):
        if k is not None and t > 0 and t % k == 0:
            h = h.detach()                                        # the cut
        h = torch.tanh(leaves["x"][:, t] @ leaves["W_ih"].T + h @ leaves["W_hh"].T + leaves["b"])
        logits.append(h @ leaves["W_out"].T + leaves["b_out"])
    logits = torch.stack(logits, dim=1)                           # (B, T, V)
    loss = F.cross_entropy(logits.flatten(0, 1), y.flatten(), ignore_index=-1)
    loss.backward()
    return loss, {name: v.grad for name, v in leaves.items()}


def compare_grads(what, ours, ref):
    """One check per gradient, each printing its largest difference."""
    for name in ref:
        check.close(f"{what}: dL/d{name} hand vs autograd", ours[name], ref[name], atol=TOL)


def check_forward(p, x, h0):
    """Our forward is the standard Elman RNN: nn.RNN with the same weights (its second bias
    b_hh set to 0, since our single b plays both roles) gives the same states."""
    ref = nn.RNN(I, H, batch_first=True, dtype=x.dtype)
    with torch.no_grad():
        ref.weight_ih_l0.copy_(p["W_ih"])
        ref.weight_hh_l0.copy_(p["W_hh"])
        ref.bias_ih_l0.copy_(p["b"])
        ref.bias_hh_l0.zero_()
        out, h_n = ref(x, h0[None])
    _, hs = rnn_forward(p, x, h0)
    check.close("our RNN forward vs nn.RNN: every state h_1..h_T", hs[:, 1:], out, atol=TOL)


def check_full_bptt(gen):
    print(f"--- full BPTT, B={B} I={I} H={H} V={V} T={T}, non-zero h0, float64")
    p = init_params(I, H, V, gen, torch.float64)
    x = torch.randn(B, T, I, generator=gen, dtype=torch.float64)
    h0 = 0.5 * torch.randn(B, H, generator=gen, dtype=torch.float64)
    y = torch.randint(0, V, (B, T), generator=gen)
    check_forward(p, x, h0)
    logits, hs = rnn_forward(p, x, h0)
    loss, d_logits = cross_entropy(logits, y)
    ours = rnn_backward(p, x, hs, d_logits)
    ref_loss, ref = autograd_grads(p, x, y, h0)
    check.close("loss: ours vs F.cross_entropy", loss, ref_loss, atol=TOL)
    compare_grads("full BPTT", ours, ref)


def check_truncated(gen):
    print(f"--- truncated BPTT: T={T_LONG} in chunks of {K_CHECK}, state carried, gradient cut")
    p = init_params(I, H, V, gen, torch.float64)
    x = torch.randn(B, T_LONG, I, generator=gen, dtype=torch.float64)
    h0 = 0.5 * torch.randn(B, H, generator=gen, dtype=torch.float64)
    y = torch.randint(0, V, (B, T_LONG), generator=gen)
    loss, ours = truncated_bptt(p, x, y, h0, K_CHECK)
    ref_loss, ref = autograd_grads(p, x, y, h0, k=K_CHECK)
    check.close("truncated: summed chunk losses vs the full loss", loss, ref_loss, atol=TOL)
    compare_grads(f"truncated k={K_CHECK}", ours, ref)
    full_loss, full = autograd_grads(p, x, y, h0)
    diff = (full["W_hh"] - ref["W_hh"]).abs().max().item()
    print(f"    the truncated gradient is a different gradient: |full - truncated| dL/dW_hh "
          f"up to {diff:.3g}")
    check.greater("full and truncated dL/dW_hh differ (the cut removes real paths)", diff, 1e3 * TOL)

    # Score only the last chunk: where does its gradient reach?
    cut = (T_LONG - 1) // K_CHECK * K_CHECK                       # first step of the last chunk
    y_last = torch.full_like(y, -1)
    y_last[:, cut:] = y[:, cut:]
    _, ours_last = truncated_bptt(p, x, y_last, h0, K_CHECK)
    _, trunc_last = autograd_grads(p, x, y_last, h0, k=K_CHECK)
    _, full_last = autograd_grads(p, x, y_last, h0)
    check.close("last chunk's loss, truncated: dL/dx hand vs autograd with detach",
                ours_last["x"], trunc_last["x"], atol=TOL)
    check.equal(f"truncated: dL/dx before the cut (steps 0..{cut - 1}) is exactly 0, "
                "non-zero entries", int(torch.count_nonzero(trunc_last["x"][:, :cut])), 0)
    inside = trunc_last["x"][:, cut:].abs().flatten(0, 1).sum(dim=-1)   # (B * steps in chunk,)
    check.true("truncated: dL/dx inside the last chunk is non-zero at every step of every example",
               bool((inside > 0).all()), f"smallest per-step |dL/dx_t|_1 {inside.min():.3g}")
    before = full_last["x"][:, :cut].abs().sum(dim=(0, 2))                # (cut,)
    check.true("full BPTT: the same loss does reach every step before the cut",
               bool((before > 0).all()), f"smallest per-step |dL/dx_t|_1 {before.min():.3g}",
               demo=True)
    return {"truncated": trunc_last["x"], "full": full_last["x"], "cut": cut}


def delay_batch(n, gen, device):
    """n sequences of random symbols; target at t = symbol at t - DELAY (-1 for t < DELAY)."""
    s = torch.randint(0, N_SYMBOLS, (n, SEQ_LEN), generator=gen)
    y = torch.full_like(s, -1)
    y[:, DELAY:] = s[:, :-DELAY]
    return F.one_hot(s, N_SYMBOLS).float().to(device), y.to(device)


def train(k, run, gen, val):
    """Adam on the hand-computed (truncated) gradient; returns validation accuracy per eval."""
    p = {name: v.to(run.device) for name, v in init_params(N_SYMBOLS, HIDDEN, N_SYMBOLS, gen).items()}
    opt = torch.optim.Adam(list(p.values()), lr=LR)
    x_val, y_val = val
    h0_val = torch.zeros(len(x_val), HIDDEN, device=run.device)
    curve = []
    for step in range(1, run.steps + 1):
        x, y = delay_batch(BATCH, gen, run.device)
        _, g = truncated_bptt(p, x, y, torch.zeros(BATCH, HIDDEN, device=run.device), k)
        for name, v in p.items():
            v.grad = g[name]
        opt.step()
        if step % EVAL_EVERY == 0 or step == run.steps:
            with torch.no_grad():
                logits, _ = rnn_forward(p, x_val, h0_val)
            scored = y_val >= 0
            curve.append((step, (logits.argmax(-1) == y_val)[scored].float().mean().item()))
    return curve


def figure(run, reach, curves):
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.2))
    full = reach["full"].abs().sum(dim=(0, 2)).cpu()                      # (T,)
    for ax, name in zip(axes[:2], ("full", "truncated")):
        per_step = reach[name].abs().sum(dim=(0, 2)).cpu()               # (T,)
        ax.bar(range(len(per_step)), per_step, color="tab:blue")
        ax.set_yscale("log")
        ax.set_ylim(float(full.min()) / 10, float(full.max()) * 10)      # same scale in both
        for t in torch.nonzero(per_step == 0)[:, 0].tolist():
            ax.text(t, ax.get_ylim()[0] * 2, "0", ha="center", color="r")
        ax.axvline(reach["cut"] - 0.5, color="r", ls="--", label="cut (state detached)")
        ax.set(xlabel="input step t", ylabel="sum over batch and features of |dL/dx_t|",
               title=f"{name} BPTT: gradient of the LAST chunk's loss\n(red 0: exactly zero)")
        ax.legend(loc="upper left")
    for label, curve in curves.items():
        axes[2].plot(*zip(*curve), label=label)
    axes[2].axhline(1 / N_SYMBOLS, color="gray", ls=":", label="chance")
    axes[2].set(xlabel="optimiser step", ylabel="validation accuracy",
                title=f"delay task: repeat the symbol from {DELAY} steps ago")
    axes[2].legend()
    plot.save(fig, run, "bptt.png")


def main(args) -> dict:
    run = cli.start(args, __file__)
    gen = torch.Generator().manual_seed(run.seed)
    data.announce("random Gaussian sequences and labels; random symbol sequences for the delay task",
                  kind="generated")
    check_full_bptt(gen)
    reach = check_truncated(gen)

    print(f"--- training on the delay task (DELAY={DELAY}, {SEQ_LEN} steps) with the hand gradient,"
          f" {run.steps} Adam steps each")
    val = delay_batch(N_VAL, gen, run.device)
    curves = {}
    for label, k in ((f"full BPTT (k={SEQ_LEN})", SEQ_LEN), (f"truncated k={K_LONG}", K_LONG),
                     (f"truncated k={K_SHORT}", K_SHORT)):
        curves[label] = train(k, run, gen, val)
        print(f"    {label:22s} final validation accuracy {curves[label][-1][1]:.3f}")
    acc = {label: curve[-1][1] for label, curve in curves.items()}
    acc_full, acc_long, acc_short = acc.values()
    check.greater(f"k={K_LONG} > DELAY learns: validation accuracy beats k={K_SHORT} < DELAY by "
                  f"{MARGIN}", acc_long - acc_short, MARGIN)
    check.greater(f"full BPTT beats k={K_SHORT} by {MARGIN}", acc_full - acc_short, MARGIN)
    figure(run, reach, curves)
    # More to think about before running: with K_SHORT = DELAY exactly, can it learn? (A chunk
    # of DELAY steps has paths of at most DELAY - 1 steps.) Why can k=3 still beat chance a
    # little? (The carried state holds some of the past by accident; the readout can use it.)
    before = reach["truncated"][:, :reach["cut"]]
    inside = reach["truncated"][:, reach["cut"]:].abs().max().item()
    return cli.finish(run, {"steps": run.steps, "val_acc_full": acc_full,
                            f"val_acc_k{K_LONG}": acc_long, f"val_acc_k{K_SHORT}": acc_short},
                      answers={
        "short_k_learns": ("yes" if acc_full - acc_short < MARGIN else "no",
                           f"validation accuracy: full BPTT {acc_full:.3f}, k={K_LONG} {acc_long:.3f}, "
                           f"k={K_SHORT} {acc_short:.3f} (chance {1 / N_SYMBOLS:.2f}; bptt.png, right)"),
        "before_cut": ("exactly zero" if int(torch.count_nonzero(before)) == 0 else
                       "tiny" if before.abs().max().item() < 1e-6 * inside else "comparable",
                       f"largest |dL/dx| before the cut {before.abs().max().item():.3g}, inside the "
                       f"last chunk {inside:.3g} (bptt.png, middle)")})


# Predict, then run: answer in your copy (`python -m dlcourse exercise 06.02`) before running it;
# `python -m dlcourse check 06.02` compares your answers with what the run measures.
# PREDICT short_k_learns (yes / no): the delay task's answer lies 4 steps back; trained with truncation k = 3, does validation accuracy get within 0.25 of full BPTT's?
# ANSWER short_k_learns:
# PREDICT before_cut (exactly zero / tiny / comparable): truncated BPTT, loss of the last chunk only: how large is its gradient with respect to the inputs before the chunk starts?
# ANSWER before_cut:


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
