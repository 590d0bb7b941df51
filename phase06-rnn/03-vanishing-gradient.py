"""03 - Vanishing gradients in time: RNN vs LSTM, clipping (phase 06, week 8)

Goal: measure how the gradient of a loss at the last step shrinks (or grows) with the distance
      back in time, for a tanh RNN and an LSTM; tie the RNN's decay to a bound you can check,
      ||W_hh||_2 * max tanh'; make gradients explode with a large W_hh; write clip-by-global-norm,
      prove it equals torch.nn.utils.clip_grad_norm_, and watch it rescue a training run.
Run:  python phase06-rnn/03-vanishing-gradient.py            (400 steps per run; 4 s on a 2-core CPU)
      python phase06-rnn/03-vanishing-gradient.py --quick    (seconds, offline, used by the tests)
Expect: on "remember the first token" over 50 steps, the gradient reaching the first token is
        ~1e-12 of the last one's for the RNN, ~1e-10 for PyTorch's default LSTM and ~1e-3.5 for
        an LSTM with forget-gate bias 1 (seeds 0-4); every measured RNN step ratio is under
        ||J_t||_2, itself under ||W_hh||_2 max tanh'; W_hh with gain 3 makes the gradient GROW
        ~1e+6 over the same distance; the clipping function equals PyTorch's exactly (diff 0);
        SGD from the same start learns the task with clipping (late loss 0.005 full, 0.01-0.08
        quick) and stays near chance (~1.4) without; vanishing.png shows all of it.
"""
from dlcourse import cli

STEPS = 400          # SGD steps of each clipping run (full run)
QUICK_STEPS = 200    # --quick


def parse_args(argv=None):
    return cli.parser(__doc__, steps=(STEPS, QUICK_STEPS)).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # a mistyped flag fails here, before torch loads

import copy
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from dlcourse import check, data, plot
import matplotlib.pyplot as plt  # after dlcourse.plot, which picks the headless backend

# The task: "remember the first token". A sequence of random symbols (one-hot); the loss is
# the cross-entropy of a readout at the LAST step against the FIRST symbol. Everything in
# between is a distractor, so the only useful gradient is the one that travels back GAP steps.
N_SYMBOLS = 4        # vocabulary (chance: 1/4, loss ln 4)
GAP = 50             # sequence length for the gradient measurements (steps)
HIDDEN = 32          # hidden units of every model
N_INITS = 10         # random initialisations averaged in the measurements
MEASURE_BATCH = 64   # sequences per measurement
FORGET_BIAS = 1.0    # added to the LSTM's forget-gate bias (Gers et al. 2000; Jozefowicz 2015)
GAIN_EXPLODE = 3.0   # W_hh ~ N(0, gain^2 / H): spectral radius ~ gain, the chaotic regime
LSTM_MARGIN = 6.0    # decades: the forget-bias LSTM must carry this much more gradient to step 0
                     # than the RNN (measured ~8 over seeds 0-4, spread of the mean ~0.6)
FORGET_MARGIN = 4.0  # decades it must carry more than the PyTorch-init LSTM (measured ~6)
EXPLODE_MIN = 3.0    # decades the gain-3 gradient must grow over GAP steps
# Clipping experiment: plain SGD on the same task, W_hh started at a gain where gradients explode.
CLIP_T = 20          # sequence length (steps)
CLIP_GAIN = 2.0      # W_hh gain at initialisation
LR = 0.1             # SGD learning rate
MAX_NORM = 1.0       # clip threshold for the global gradient norm
BATCH = 32           # sequences per SGD step
CLIP_EPS = 1e-6      # PyTorch divides by (total norm + 1e-6); matched for an exact comparison


def first_token_batch(n, length, gen, device="cpu", dtype=torch.float32):
    """n sequences of random symbols, one-hot (n, length, V); target: the first symbol (n,)."""
    s = torch.randint(0, N_SYMBOLS, (n, length), generator=gen)
    return F.one_hot(s, N_SYMBOLS).to(device, dtype), s[:, 0].to(device)


class Recurrent(nn.Module):
    """nn.RNN (tanh) or nn.LSTM, then a linear readout of the last hidden state."""

    def __init__(self, kind, gain=None, forget_bias=0.0):
        super().__init__()
        self.rnn = {"rnn": nn.RNN, "lstm": nn.LSTM}[kind](N_SYMBOLS, HIDDEN, batch_first=True)
        self.out = nn.Linear(HIDDEN, N_SYMBOLS)
        with torch.no_grad():
            if gain is not None:   # W_hh entries N(0, gain^2/H): eigenvalues fill a disc of radius ~gain
                self.rnn.weight_hh_l0.normal_(0, gain / math.sqrt(HIDDEN))
            if kind == "lstm":     # PyTorch's gate order is (input, forget, cell, output)
                self.rnn.bias_ih_l0[HIDDEN:2 * HIDDEN] += forget_bias

    def forward(self, x):
        out, _ = self.rnn(x)                       # (B, T, H)
        return self.out(out[:, -1])                # (B, V): the last step only


def input_grad_norms(model, x, y):
    """||dL/dx_t|| over the batch and features, for every t: how much gradient reaches step t.
    The input gradient counts every path (through h and, in an LSTM, through the cell c)."""
    x = x.clone().requires_grad_(True)
    F.cross_entropy(model(x), y).backward()
    return x.grad.norm(dim=(0, 2))                 # (T,)


def measure_decay(kind, gen, gain=None, forget_bias=0.0):
    """log10 ||dL/dx_t|| - log10 ||dL/dx_{T-1}||, for N_INITS random models: (N_INITS, T).
    float64 on the CPU: a 1e-14 ratio must not be rounding."""
    rows = []
    for _ in range(N_INITS):
        model = Recurrent(kind, gain, forget_bias).double()
        x, y = first_token_batch(MEASURE_BATCH, GAP, gen, dtype=torch.float64)
        norms = input_grad_norms(model, x, y)
        rows.append((norms / norms[-1]).log10())
    return torch.stack(rows)


def tanh_prime(h):
    """tanh'(z) written with h = tanh(z): 1 - h^2, between 0 and 1, equal to 1 only at z = 0."""
    return 1 - h ** 2


def step_back(g, h, w_hh):
    """One step of BPTT in a tanh RNN whose loss sits later: h_t = tanh(W_ih x_t + W_hh h_{t-1}
    + b), so dL/dh_{t-1} = W_hh^T (dL/dh_t * tanh'(z_t)); rows are examples: (B, H)."""
    # EXERCISE step_back: multiply dL/dh_t by tanh'(z_t) = 1 - h_t^2, then by W_hh (rows are examples, so W_hh^T v becomes v @ W_hh)
    return (g * tanh_prime(h)) @ w_hh
    # END EXERCISE


def step_jacobian(h, w_hh):
    """J_t = dh_t/dh_{t-1} = diag(tanh'(z_t)) W_hh, per example: (B, H, H). Backward,
    dL/dh_{t-1} = J_t^T dL/dh_t, so the ratio of norms is at most ||J_t||_2."""
    # EXERCISE step_jacobian: diag(tanh'(z_t)) W_hh: row j of W_hh scaled by 1 - h_tj^2, batched to (B, H, H)
    return tanh_prime(h)[:, :, None] * w_hh                        # row j scaled by tanh'_j
    # END EXERCISE


def step_bound(h, w_hh):
    """||dL/dh_{t-1}|| <= ||W_hh||_2 * max_j tanh'(z_tj) * ||dL/dh_t||: the spectral norm (largest
    singular value) bounds what W_hh^T can do to any vector, the diagonal tanh' at most scales
    by its largest entry. Returns the factor per example: (B,)."""
    return torch.linalg.matrix_norm(w_hh, ord=2) * tanh_prime(h).max(dim=-1).values


def rnn_state_grads(cell, readout, x, y, h0):
    """The RNN unrolled with nn.RNNCell; retain_grad keeps dL/dh_t of every state.
    Returns the states h_0..h_T and their gradients, each (B, T+1, H)."""
    h0 = h0.clone().requires_grad_(True)
    hs = [h0]
    for t in range(x.shape[1]):
        hs.append(cell(x[:, t], hs[-1]))
        hs[-1].retain_grad()
    F.cross_entropy(readout(hs[-1]), y).backward()
    return torch.stack([h.detach() for h in hs], 1), torch.stack([h.grad for h in hs], 1)


def check_bound(gen):
    """The RNN's step-by-step Jacobian: formula vs autograd, and the ratio vs its bound."""
    print("--- one BPTT step in the RNN: formula vs autograd, and the bound ||W_hh||_2 max tanh'")
    cell = nn.RNNCell(N_SYMBOLS, HIDDEN).double()
    readout = nn.Linear(HIDDEN, N_SYMBOLS).double()
    x, y = first_token_batch(MEASURE_BATCH, GAP, gen, dtype=torch.float64)
    h0 = 0.5 * torch.randn(MEASURE_BATCH, HIDDEN, generator=gen, dtype=torch.float64)
    hs, gs = rnn_state_grads(cell, readout, x, y, h0)
    w_hh = cell.weight_hh.detach()
    ours = torch.stack([step_back(gs[:, t], hs[:, t], w_hh) for t in range(1, GAP + 1)], 1)
    scale = gs.abs().max().item()
    check.close("dL/dh_{t-1} = W_hh^T (dL/dh_t * (1 - h_t^2)) vs autograd, every t, every example",
                ours, gs[:, :-1], atol=1e-12 * scale)
    norms = gs.norm(dim=-1)                                            # (B, T+1)
    ratio = norms[:, :-1] / norms[:, 1:]                               # (B, T): step t back to t-1
    bound = torch.stack([step_bound(hs[:, t], w_hh) for t in range(1, GAP + 1)], 1)   # (B, T)
    jacs = torch.stack([step_jacobian(hs[:, t], w_hh) for t in range(1, GAP + 1)], 1)  # (B, T, H, H)
    # autograd's Jacobian of one cell step, for the first example at every step
    ref = torch.stack([torch.autograd.functional.jacobian(
        lambda h: cell(x[0, t - 1], h), hs[0, t - 1]) for t in range(1, GAP + 1)])     # (T, H, H)
    check.close("J_t = diag(1 - h_t^2) W_hh vs autograd's Jacobian dh_t/dh_{t-1}, every step",
                jacs[0], ref, atol=1e-12)
    jac = torch.linalg.matrix_norm(jacs, ord=2)                                          # (B, T)
    print(f"    ||W_hh||_2 = {torch.linalg.matrix_norm(w_hh, ord=2):.3f}, spectral radius "
          f"{torch.linalg.eigvals(w_hh).abs().max():.3f}")
    check.less("every measured step ratio ||dL/dh_{t-1}|| / ||dL/dh_t|| over ||J_t||_2 "
               "(largest ratio/||J_t||)", (ratio / jac).max(), 1 + 1e-9, strict=False)
    check.less("every ||J_t||_2 over its bound ||W_hh||_2 max tanh' (largest ||J_t||/bound)",
               (jac / bound).max(), 1 + 1e-9, strict=False)
    print(f"    median over steps and examples: ratio {ratio.median():.3f} <= ||J_t||_2 "
          f"{jac.median():.3f} <= bound {bound.median():.3f}")
    return ratio, jac, bound


def global_grad_norm(params):
    """sqrt of the sum of squares of EVERY gradient entry: the norm of the whole gradient vector."""
    return torch.sqrt(sum((p.grad ** 2).sum() for p in params if p.grad is not None))


def clip_grad_norm(params, max_norm):
    """Clip by global norm: if the whole gradient is longer than max_norm, scale every tensor by
    the same factor so that it has length max_norm. One factor keeps the direction; clipping
    each tensor on its own would turn it. Never scales up. Returns the norm before clipping."""
    # EXERCISE clip_grad_norm: total = global norm of all gradients; scale every gradient in place by min(1, max_norm / (total + CLIP_EPS)); return total
    params = [p for p in params if p.grad is not None]
    total = global_grad_norm(params)
    coef = torch.clamp(max_norm / (total + CLIP_EPS), max=1.0)
    for p in params:
        p.grad.mul_(coef)
    return total
    # END EXERCISE


def check_clipping(model, x, y):
    """Ours vs torch.nn.utils.clip_grad_norm_ on the same gradients: once where clipping
    triggers (max_norm below the norm) and once where it must leave them alone."""
    F.cross_entropy(model(x), y).backward()
    grads = [p.grad.clone() for p in model.parameters()]
    total = global_grad_norm(list(model.parameters())).item()
    for case, max_norm in (("triggers", MAX_NORM), ("does not trigger", 2 * total)):
        results = []
        for fn in (clip_grad_norm, torch.nn.utils.clip_grad_norm_):
            for p, g in zip(model.parameters(), grads):
                p.grad = g.clone()
            norm = fn(model.parameters(), max_norm)
            results.append((norm, torch.cat([p.grad.flatten() for p in model.parameters()])))
        (ours_norm, ours), (ref_norm, ref) = results
        check.close(f"clip ({case}, max_norm {max_norm:.3g}, norm {total:.3g}): returned norm vs "
                    "clip_grad_norm_", ours_norm, ref_norm, atol=0, rtol=1e-12)
        check.close(f"clip ({case}): every clipped gradient entry vs clip_grad_norm_",
                    ours, ref, atol=1e-12 * ref.abs().max().item())
    model.zero_grad()
    return total


def train(model, clip, run, data_seed):
    """SGD on remember-the-first-token over CLIP_T steps; returns per-step loss and grad norm.
    The same data_seed gives both runs the same batches in the same order."""
    gen = torch.Generator().manual_seed(data_seed)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    losses, norms = [], []
    for _ in range(run.steps):
        x, y = first_token_batch(BATCH, CLIP_T, gen, run.device)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        if clip:
            norm = clip_grad_norm(model.parameters(), MAX_NORM)
        else:
            norm = global_grad_norm(list(model.parameters()))
        opt.step()
        losses.append(loss.item())
        norms.append(norm.item())
    return losses, norms


def late(losses):
    """Mean loss over the last quarter of the run; a diverged run (inf/NaN) counts as inf."""
    tail = torch.tensor(losses[-max(1, len(losses) // 4):])
    return tail.mean().item() if torch.isfinite(tail).all() else math.inf


def figure(run, curves, steps, runs):
    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    ax = axes[0, 0]
    for label, rows in curves.items():
        mean, std = rows.mean(0).flip(0), rows.std(0).flip(0)        # index = distance from the loss
        dist = torch.arange(len(mean))
        ax.plot(dist, mean, label=label)
        ax.fill_between(dist, mean - std, mean + std, alpha=0.2)
    ax.set(xlabel="distance in time from the loss (steps)",
           ylabel="log10 ||dL/dx_t|| / ||dL/dx_last||",
           title=f"gradient vs distance, mean +- std over {N_INITS} inits")
    ax.legend(fontsize=8)
    ax = axes[0, 1]
    for (label, values), style in zip(steps.items(), ("o", "-", "--")):
        dist = torch.arange(values.shape[1]).flip(0)                  # step t -> distance T - t
        if style == "o":
            ax.plot(dist.repeat(values.shape[0]), values.flatten(), "o", ms=2, alpha=0.15,
                    label=label + " (every example)")
        else:
            ax.plot(dist, values.median(0).values, style, label=label + " (median)")
    ax.set(xlabel="distance in time from the loss (steps)", ylabel="factor per step back",
           title="tanh RNN: measured ratio <= ||J_t||_2 <= ||W_hh||_2 max tanh'")
    ax.legend(fontsize=8)
    for label, (losses, norms) in runs.items():
        axes[1, 0].plot(losses, label=label)
        axes[1, 1].semilogy(norms, label=label)
    axes[1, 0].axhline(math.log(N_SYMBOLS), color="gray", ls=":", label="chance (ln 4)")
    axes[1, 0].set(xlabel="SGD step", ylabel="training loss", ylim=(0, 4),
                   title=f"SGD, lr {LR}, W_hh gain {CLIP_GAIN}: with and without clipping")
    axes[1, 0].legend()
    axes[1, 1].axhline(MAX_NORM, color="r", ls="--", label="max_norm")
    axes[1, 1].set(xlabel="SGD step", ylabel="global gradient norm (before clipping)",
                   title="the gradient norm each step")
    axes[1, 1].legend()
    plot.save(fig, run, "vanishing.png")


def main(args) -> dict:
    run = cli.start(args, __file__)
    gen = torch.Generator().manual_seed(run.seed)
    data.announce("random symbol sequences: remember the first token", kind="generated")

    print(f"--- gradient vs distance: loss at step {GAP}, {N_INITS} inits each, float64")
    curves = {"tanh RNN (PyTorch init)": measure_decay("rnn", gen),
              "LSTM (PyTorch init)": measure_decay("lstm", gen),
              f"LSTM, forget bias +{FORGET_BIAS:g}": measure_decay("lstm", gen, forget_bias=FORGET_BIAS),
              f"tanh RNN, W_hh gain {GAIN_EXPLODE:g}": measure_decay("rnn", gen, gain=GAIN_EXPLODE)}
    reach = {label: rows[:, 0].mean().item() for label, rows in curves.items()}
    for label, value in reach.items():
        print(f"    {label:28s} gradient at the first token / at the last: 10^{value:.1f}")
    rnn, lstm, lstm_fb, explode = reach.values()
    check.greater(f"LSTM with forget bias carries more gradient to the first token than the RNN, "
                  f"by > {LSTM_MARGIN:g} decades", lstm_fb - rnn, LSTM_MARGIN)
    check.greater(f"... and than the PyTorch-init LSTM, by > {FORGET_MARGIN:g} decades",
                  lstm_fb - lstm, FORGET_MARGIN)
    check.greater(f"W_hh gain {GAIN_EXPLODE:g}: the gradient grows by > {EXPLODE_MIN:g} decades "
                  f"over {GAP} steps (explodes)", explode, EXPLODE_MIN)

    ratio, jac, bound = check_bound(gen)
    per_step = curves["tanh RNN (PyTorch init)"].mean(0).diff().mean().item()   # log10 per step
    print(f"    RNN: each step back multiplies the gradient by 10^{-per_step:.2f} on average; the "
          f"bound allows at most 10^{bound.log10().mean():.2f} (geometric mean of the bounds).\n"
          "    The bound is loose: ||W_hh||_2 is the worst direction; over many steps the decay "
          "follows the spectral radius of W_hh times a typical tanh'.")

    print("--- clip by global norm vs torch.nn.utils.clip_grad_norm_ (gain-"
          f"{GAIN_EXPLODE:g} RNN, float64)")
    model = Recurrent("rnn", gain=GAIN_EXPLODE).double()
    total = check_clipping(model, *first_token_batch(MEASURE_BATCH, GAP, gen, dtype=torch.float64))
    check.greater("the clipping test's gradient norm is far above max_norm (so clipping is tested)",
                  total, 10 * MAX_NORM)

    print(f"--- training: SGD, {run.steps} steps, T={CLIP_T}, W_hh gain {CLIP_GAIN:g}, "
          f"with and without clipping at {MAX_NORM:g}")
    start = Recurrent("rnn", gain=CLIP_GAIN).to(run.device)    # both runs start from this model
    data_seed = int(torch.randint(0, 2 ** 31, (1,), generator=gen))
    runs = {"no clipping": train(copy.deepcopy(start), False, run, data_seed),
            f"clip at {MAX_NORM:g}": train(copy.deepcopy(start), True, run, data_seed)}
    (loss_raw, norm_raw), (loss_clip, norm_clip) = runs.values()
    late_raw, late_clip = late(loss_raw), late(loss_clip)
    share = sum(n > MAX_NORM for n in norm_clip) / len(norm_clip)
    print(f"    late loss (last quarter): without clipping {late_raw:.3f}, with {late_clip:.3f}; "
          f"largest gradient norm {max(norm_raw):.3g} / {max(norm_clip):.3g}; "
          f"clipping triggered in {share:.0%} of steps")
    check.less("with clipping the late loss is under half of chance (ln 4)", late_clip,
               math.log(N_SYMBOLS) / 2)
    check.less("with clipping the late loss is under half of the unclipped run's", late_clip,
               late_raw / 2)
    figure(run, curves, {"||dL/dh_{t-1}|| / ||dL/dh_t||": ratio, "||J_t||_2": jac,
                         "||W_hh||_2 max tanh'": bound}, runs)
    # More to think about before running: what does the RNN curve do with W_hh gain 1? Would
    # clipping each tensor to MAX_NORM on its own be the same as clipping the global norm?
    most = max(("rnn", rnn), ("lstm", lstm), ("lstm with forget bias", lstm_fb), key=lambda kv: kv[1])
    return cli.finish(run, {"steps": run.steps, "decades_rnn": rnn, "decades_lstm": lstm,
                            "decades_lstm_forget_bias": lstm_fb, "decades_gain3": explode,
                            "late_loss_no_clip": late_raw, "late_loss_clip": late_clip}, answers={
        "most_reach": (most[0], f"gradient at the first token / at the last: RNN 10^{rnn:.1f}, "
                       f"LSTM 10^{lstm:.1f}, LSTM with forget bias 10^{lstm_fb:.1f} "
                       "(vanishing.png, top left)"),
        "clip_lower_loss": ("with clipping" if late_clip < late_raw else "without clipping",
                            f"late loss (last quarter): without clipping {late_raw:.3f}, with "
                            f"{late_clip:.3f} (vanishing.png, bottom left)")})


# Predict, then run: answer in your copy (`python -m dlcourse exercise 06.03`) before running it;
# `python -m dlcourse check 06.03` compares your answers with what the run measures.
# PREDICT most_reach (rnn / lstm / lstm with forget bias): which network carries the most gradient back to the first token, 50 steps before the loss?
# ANSWER most_reach:
# PREDICT clip_lower_loss (with clipping / without clipping): SGD on an RNN whose W_hh gain makes gradients explode: which run ends with the lower training loss?
# ANSWER clip_lower_loss:


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
