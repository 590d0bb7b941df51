"""01 - An RNN cell from scratch (phase 06, week 8)

Goal: write the Elman cell h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), unroll it over
      time on batch-first input, stack two layers, and prove that it computes exactly what
      nn.RNN computes once the weights are copied; then train it briefly to predict the next
      sample of noisy sine waves and look at its hidden state.
Run:  python phase06-rnn/01-rnn-basics.py            (600 steps; 3 s on a 2-core CPU, 10 s when busy)
      python phase06-rnn/01-rnn-basics.py --quick    (seconds, offline, used by the tests)
Expect: "[check] 1 layer vs nn.RNN (time-major): outputs" and the h_n lines ~1e-7, likewise for
        2 layers; on the sine task the test MSE (measured once) is well below persistence's
        ("predict the last value"): seed 0 full 0.0068 vs 0.183; quick 0.015-0.016 vs
        0.18-0.20 over seeds 0-4;
        rnn_basics.png shows a prediction and the hidden state's trajectory.
"""
from dlcourse import cli

STEPS = 600          # optimiser steps on the sine task (full run)
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
import matplotlib.pyplot as plt  # after dlcourse.plot, which picks a headless backend

# Parity sizes: all different, so a transposed weight or a batch/time mix-up cannot line up
# by accident (lessons 04-06 use them too).
INPUT, HIDDEN, BATCH, TIME = 5, 7, 3, 6   # input features, hidden units, sequences, time steps
LAYERS = 2           # the stacked comparison
ATOL = 1e-5          # float32: a correct cell differs from nn.RNN by round-off (~1e-7)

# The sine task: x_t = sin(w t + phase) + noise, predict x_{t+1}. The frequency w differs per
# sequence, so the RNN has to infer it from the samples it has seen.
FREQ = (0.3, 0.9)    # radians per time step, drawn uniformly per sequence
NOISE = 0.05         # std of the Gaussian noise added to every sample
SEQ_LEN = 40         # time steps per sequence
WARMUP = 5           # first steps left out of the scores: no history to infer w from yet
TRAIN_HIDDEN = 24    # hidden units of the trained RNN
LR = 1e-2            # Adam learning rate
BATCH_TRAIN = 32     # sequences per step
N_TRAIN, N_VAL, N_TEST = 512, 256, 256   # sequences (fresh frequencies and phases each)
EVAL_EVERY = 25      # steps between validation scores; the best one's weights are kept


# ---------------------------------------------------------------- the cell and the unroller
def rnn_cell(x_t, h, p):
    """One Elman step. x_t (B, I), h (B, H); p holds w_ih (H, I), w_hh (H, H), b_ih, b_hh (H,).
    Two biases where one would do: that is PyTorch's parameterisation, kept so weights copy 1:1.
    Rows of x_t are examples, so W x becomes x @ W.T."""
    # EXERCISE rnn_cell: h' = tanh(x_t W_ih^T + b_ih + h W_hh^T + b_hh), rows are examples
    return torch.tanh(x_t @ p["w_ih"].T + p["b_ih"] + h @ p["w_hh"].T + p["b_hh"])
    # END EXERCISE


def hidden(state):
    """The part of a cell's state that is its output: h. (An LSTM's state is the pair (h, c).)"""
    return state[0] if isinstance(state, tuple) else state


def run_layer(cell, x, state, p):
    """Unroll `cell` over time with the same weights p at every step.
    x (B, T, I) batch-first; state (B, H) or a tuple of such tensors (LSTM: (h, c)).
    Returns the outputs (B, T, H), one h per step, and the final state."""
    # EXERCISE run_layer: for each t, state = cell(x[:, t], state, p) and keep hidden(state); stack the outputs on dim 1, return them and the final state
    outputs = []
    for t in range(x.shape[1]):                 # time is dim 1: batch-first
        state = cell(x[:, t], state, p)         # x[:, t]: (B, I)
        outputs.append(hidden(state))           # (B, H)
    return torch.stack(outputs, dim=1), state   # (B, T, H)
    # END EXERCISE


def layer_state(state, k):
    """Layer k's slice of a state in PyTorch's layout: h0 (L, B, H) -> (B, H); an LSTM's
    (h0, c0) -> (h0[k], c0[k])."""
    return tuple(s[k] for s in state) if isinstance(state, tuple) else state[k]


def stack_states(states):
    """A list of per-layer states -> PyTorch's layout (L, B, H) (a tuple of them for an LSTM)."""
    if isinstance(states[0], tuple):
        return tuple(torch.stack(parts) for parts in zip(*states))
    return torch.stack(states)


def run_stack(cell, x, state, params):
    """A stack of len(params) layers: layer k's outputs are layer k+1's inputs, and each layer
    starts from its own slice of the initial state (PyTorch's layout, (L, B, H)).
    Returns the top layer's outputs (B, T, H) and every layer's final state (L, B, H)."""
    # EXERCISE run_stack: layer k runs on the previous layer's outputs from layer_state(state, k); collect each final state and stack_states them
    finals = []
    for k, p in enumerate(params):
        x, final = run_layer(cell, x, layer_state(state, k), p)   # (B, T, H)
        finals.append(final)
    return x, stack_states(finals)
    # END EXERCISE


# ------------------------------------------------------------------------- weights
def copy_weights(module):
    """nn.RNN / nn.LSTM / nn.GRU -> one dict of weights per layer and direction, in the order
    of PyTorch's h_n: layer 0, [layer 0 reversed,] layer 1, ... Each tensor is a detached clone,
    so the scratch code never reads the module itself. An LSTM's or GRU's tensors hold its gates
    stacked along dim 0 (4H or 3H rows); lessons 04 and 05 split them."""
    assert module.bias, "the scratch cells expect bias=True"
    assert getattr(module, "proj_size", 0) == 0, "proj_size is not covered here"
    suffixes = ("", "_reverse") if module.bidirectional else ("",)
    params = []
    for k in range(module.num_layers):
        for suffix in suffixes:
            params.append({key: getattr(module, f"{name}_l{k}{suffix}").detach().clone()
                           for key, name in (("w_ih", "weight_ih"), ("w_hh", "weight_hh"),
                                             ("b_ih", "bias_ih"), ("b_hh", "bias_hh"))})
    return params


def init_params(input_size, hidden_size, num_layers=1, gates=1, directions=1):
    """Trainable weights laid out like copy_weights' output, initialised as PyTorch does:
    every tensor uniform in [-1/sqrt(H), 1/sqrt(H)]. `gates` blocks of H rows each (RNN 1,
    GRU 3, LSTM 4); a layer above the first reads H * directions features (lesson 06: 2)."""
    bound = 1 / math.sqrt(hidden_size)
    layers = nn.ModuleList()
    for k in range(num_layers):
        n_in = input_size if k == 0 else hidden_size * directions
        for _ in range(directions):
            rows = gates * hidden_size
            shapes = {"w_ih": (rows, n_in), "w_hh": (rows, hidden_size),
                      "b_ih": (rows,), "b_hh": (rows,)}
            layers.append(nn.ParameterDict(
                {key: nn.Parameter(torch.empty(shape).uniform_(-bound, bound))
                 for key, shape in shapes.items()}))
    return layers


# ------------------------------------------------------------------------- parity checks
def random_states(num_states, layers, batch, hidden_size, device):
    """Non-zero initial states in PyTorch's layout: one (layers, B, H) tensor, or a tuple of
    num_states of them (an LSTM's (h0, c0)). Zero states would hide a missing W_hh h term
    at the first step."""
    states = tuple(torch.randn(layers, batch, hidden_size, device=device)
                   for _ in range(num_states))
    return states[0] if num_states == 1 else states


def compare(name, ours, reference, atol=ATOL):
    """Check a scratch run's (outputs, final state) against a module's, tensor by tensor,
    printing the largest difference of each: outputs, h_n (and c_n for an LSTM)."""
    (out, state), (ref_out, ref_state) = ours, reference
    diffs = [check.close(f"{name}: outputs {tuple(ref_out.shape)}", out, ref_out, atol=atol)]
    as_tuple = (lambda s: s if isinstance(s, tuple) else (s,))
    names = ("h_n", "c_n") if isinstance(ref_state, tuple) else ("h_n",)
    for label, a, e in zip(names, as_tuple(state), as_tuple(ref_state), strict=True):
        diffs.append(check.close(f"{name}: {label} {tuple(e.shape)}", a, e, atol=atol))
    return max(diffs)


def check_against_nn_rnn(run):
    """One layer against a time-major nn.RNN (PyTorch's default layout), two layers against a
    batch-first one. Either way h_n is (layers, B, H): batch_first does not apply to it."""
    dev = run.device
    x = torch.randn(BATCH, TIME, INPUT, device=dev)                    # (B, T, I)
    worst = 0.0
    with torch.no_grad():
        ref = nn.RNN(INPUT, HIDDEN).to(dev)                            # expects (T, B, I)
        h0 = random_states(1, 1, BATCH, HIDDEN, dev)                   # (1, B, H)
        ref_out, ref_h = ref(x.transpose(0, 1), h0)                    # (T, B, H), (1, B, H)
        ours = run_stack(rnn_cell, x, h0, copy_weights(ref))
        worst = max(worst, compare("1 layer vs nn.RNN (time-major)", ours,
                                   (ref_out.transpose(0, 1), ref_h)))  # back to (B, T, H)

        ref = nn.RNN(INPUT, HIDDEN, num_layers=LAYERS, batch_first=True).to(dev)
        h0 = random_states(1, LAYERS, BATCH, HIDDEN, dev)              # (L, B, H)
        ours = run_stack(rnn_cell, x, h0, copy_weights(ref))
        worst = max(worst, compare(f"{LAYERS} layers vs nn.RNN(num_layers={LAYERS})", ours,
                                   ref(x, h0)))
    print(f"largest difference from nn.RNN: {worst:.2g}")
    return worst


# ------------------------------------------------------------------------- the sine task
def make_sines(n, gen, device):
    """n noisy sine waves of SEQ_LEN + 1 samples: inputs (n, T, 1), targets (n, T, 1) = the
    inputs shifted by one step, and each sequence's frequency (n,)."""
    w = FREQ[0] + (FREQ[1] - FREQ[0]) * torch.rand(n, 1, generator=gen)
    phase = 2 * math.pi * torch.rand(n, 1, generator=gen)
    t = torch.arange(SEQ_LEN + 1).float()
    wave = torch.sin(w * t + phase) + NOISE * torch.randn(n, SEQ_LEN + 1, generator=gen)
    wave = wave.unsqueeze(-1).to(device)                               # (n, T + 1, 1)
    return wave[:, :-1], wave[:, 1:], w.squeeze(1)


class SineRNN(nn.Module):
    """The scratch cell with trainable weights and a linear read-out of every h_t."""

    def __init__(self, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.layers = init_params(1, hidden_size)
        self.head = nn.Linear(hidden_size, 1)

    def forward(self, x):                                              # x: (B, T, 1)
        h0 = torch.zeros(1, x.shape[0], self.hidden_size, device=x.device)
        out, _ = run_stack(rnn_cell, x, h0, self.layers)               # (B, T, H)
        return self.head(out), out                                     # (B, T, 1), (B, T, H)


def scored_mse(pred, target):
    """Mean squared error over the steps after WARMUP (the same steps for every predictor)."""
    return F.mse_loss(pred[:, WARMUP:], target[:, WARMUP:]).item()


def train_sines(run, splits):
    (x, y, _), (x_val, y_val, _) = splits["train"], splits["val"]
    model = SineRNN(TRAIN_HIDDEN).to(run.device)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    order = torch.Generator().manual_seed(run.seed)
    history, best = {"step": [], "train": [], "val": []}, (math.inf, None, 0)
    for step in range(1, run.steps + 1):
        idx = torch.randint(0, len(x), (BATCH_TRAIN,), generator=order)
        pred, _ = model(x[idx])
        loss = F.mse_loss(pred[:, WARMUP:], y[idx][:, WARMUP:])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % EVAL_EVERY == 0 or step == run.steps:
            with torch.no_grad():
                val = scored_mse(model(x_val)[0], y_val)
            history["step"].append(step)
            history["train"].append(loss.item())
            history["val"].append(val)
            if val < best[0]:   # keep the weights of the best validation score
                best = (val, {k: v.clone() for k, v in model.state_dict().items()}, step)
    model.load_state_dict(best[1])
    return model, history, best


def main(args) -> dict:
    run = cli.start(args, __file__)
    torch.set_num_threads(1)                    # same numbers whatever the core count
    torch.backends.cudnn.allow_tf32 = False     # cuDNN's RNNs may use TF32 on a GPU by default:
    torch.backends.cuda.matmul.allow_tf32 = False   # ~1e-3 errors that would swamp the check
    worst = check_against_nn_rnn(run)

    gen = torch.Generator().manual_seed(run.seed)
    data.announce("noisy sine waves", "generated",
                  detail=f"{N_TRAIN}/{N_VAL}/{N_TEST} sequences of {SEQ_LEN} steps, "
                         f"frequency {FREQ[0]}-{FREQ[1]} rad/step, noise std {NOISE}")
    splits = {name: make_sines(n, gen, run.device)
              for name, n in (("train", N_TRAIN), ("val", N_VAL), ("test", N_TEST))}
    model, history, (best_val, _, best_step) = train_sines(run, splits)
    x_test, y_test, w_test = splits["test"]
    with torch.no_grad():
        pred, states = model(x_test)                                    # (N, T, 1), (N, T, H)
    test_mse = scored_mse(pred, y_test)
    persistence = scored_mse(x_test, y_test)    # "tomorrow = today": the baseline to beat
    print(f"best validation MSE {best_val:.4f} at step {best_step}; test MSE (measured once) "
          f"{test_mse:.4f} vs persistence {persistence:.4f}")
    check.less("test MSE of the trained scratch RNN vs half the persistence baseline's",
               test_mse, persistence / 2)

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.2), layout="constrained")
    i = int(w_test.argmin())                    # the slowest wave: its oscillation is clearest
    steps = torch.arange(SEQ_LEN)
    axes[0].plot(steps, y_test[i, :, 0].cpu(), "k.-", label="target x(t+1)")
    axes[0].plot(steps, pred[i, :, 0].cpu(), "r-", label="RNN prediction")
    axes[0].axvspan(-0.5, WARMUP - 0.5, color="0.9", label="warm-up (not scored)")
    axes[0].set(xlabel="time step t", title=f"test sequence, w = {w_test[i]:.2f} rad/step")
    axes[0].legend(fontsize=8)
    shown = axes[1].imshow(states[i].T.cpu(), aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1)
    fig.colorbar(shown, ax=axes[1], fraction=0.04)
    axes[1].set(xlabel="time step t", ylabel="hidden unit",
                title="hidden state h_t = tanh(...) in [-1, 1]")
    axes[2].plot(history["step"], history["train"], label="train (one batch)")
    axes[2].plot(history["step"], history["val"], label="validation")
    axes[2].axhline(persistence, color="k", ls="--", label="persistence (test)")
    axes[2].set(xlabel="step", ylabel="MSE", yscale="log", title="training")
    axes[2].legend(fontsize=8)
    plot.save(fig, run, "rnn_basics.png")
    probe = nn.RNN(3, 4, num_layers=2, batch_first=True)           # B=5, T=7, L=2, H=4: all differ
    _, h_n = probe(torch.zeros(5, 7, 3))
    layout = {(2, 5, 4): "layers first", (5, 2, 4): "batch first"}.get(tuple(h_n.shape), "other")
    return cli.finish(run, {"steps": run.steps, "max_diff_vs_nn_rnn": worst,
                            "best_val_mse": best_val, "best_step": best_step,
                            "test_mse": test_mse, "persistence_mse": persistence}, answers={
        "hn_layout": (layout, f"nn.RNN(3, 4, num_layers=2, batch_first=True) on x (5, 7, 3): "
                      f"h_n {tuple(h_n.shape)} = (L, B, H); batch_first only changes x and out"),
        "beats_half_persistence": ("yes" if test_mse < persistence / 2 else "no",
                                   f"test MSE {test_mse:.4f} vs persistence {persistence:.4f} "
                                   "(rnn_basics.png, right)")})


# Predict, then run: answer in your copy (`python -m dlcourse exercise 06.01`) before running it;
# `python -m dlcourse check 06.01` compares your answers with what the run measures.
# PREDICT hn_layout (batch first / layers first): nn.RNN(batch_first=True, num_layers=2): is h_n laid out (B, L, H), batch first, or (L, B, H), layers first?
# ANSWER hn_layout:
# PREDICT beats_half_persistence (yes / no): does the trained RNN's test MSE come in under half of the persistence baseline's ("next value = this value")?
# ANSWER beats_half_persistence:
# More to think about before running:
# - With h0 = 0, which term of the cell does the first step not exercise?
# - Why can persistence not be beaten by much at the lowest frequencies, and what does the
#   RNN have to learn that persistence ignores?

if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
