"""05 - GRU from scratch (phase 06, week 8)

Goal: write the GRU cell with PyTorch's gate order (r, z, n) and PyTorch's convention that the
      reset gate multiplies (W_hn h + b_hn), unroll it with lesson 01's loop, and prove that
      outputs and h_n equal nn.GRU's with copied weights, for one layer and for two; see that
      the original paper's variant is a different network; count the parameters of RNN, GRU
      and LSTM by formula and check the count against PyTorch's modules.
Run:  python phase06-rnn/05-gru.py            (no training: the full run is the quick run)
      python phase06-rnn/05-gru.py --quick    (seconds, offline, used by the tests)
Expect: "[check] 1 layer vs nn.GRU: outputs" and h_n ~1e-7, likewise for 2 layers; Cho et
        al.'s reset-before-the-matmul variant differs from nn.GRU by ~0.2-0.3; the parameter
        formula equals sum(p.numel()) for all three kinds, one and two layers, one and two
        directions (GRU = 3x, LSTM = 4x an RNN's); gru.png shows the gates and the counts.
"""
from dlcourse import cli


def parse_args(argv=None):
    return cli.parser(__doc__).parse_args(argv)   # no training loop: no --epochs / --steps


if __name__ == "__main__":
    ARGS = parse_args()   # a mistyped flag fails here, before torch loads

import torch
import torch.nn as nn

from dlcourse import check, lessons, plot
import matplotlib.pyplot as plt  # after dlcourse.plot, which picks a headless backend

basics = lessons.load("06.01")   # lesson 01: run_layer / run_stack, copy_weights, compare, sizes

GATES = "rzn"        # PyTorch's order of the three H-row blocks: reset, update, candidate
INPUT, HIDDEN, BATCH, TIME = basics.INPUT, basics.HIDDEN, basics.BATCH, basics.TIME
LAYERS = basics.LAYERS
ATOL = basics.ATOL   # float32 round-off is ~1e-7; a wrong formula is off by ~0.01-1
VARIANT_MIN = 1e-3   # the paper's variant must miss nn.GRU by more than this
GATES_PER_KIND = {"RNN": 1, "GRU": 3, "LSTM": 4}      # H-row blocks in each weight
MODULES = {"RNN": nn.RNN, "GRU": nn.GRU, "LSTM": nn.LSTM}
COUNT_SIZES = [(INPUT, HIDDEN, 1, False), (INPUT, HIDDEN, LAYERS, False),
               (INPUT, HIDDEN, LAYERS, True)]   # (input, hidden, layers, bidirectional) checked
FIGURE_SIZES = (128, 256)   # (input, hidden) of the bar chart: a typical small model
DEMO_HIDDEN = 32     # hidden units of the random GRU whose gates the figure shows


def gru_gates(x_t, h, p):
    """r, z and the candidate n at one step, each (B, H).
        r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)          reset: how much of h the candidate sees
        z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)          update: how much of h to keep
        n = tanh(W_in x + b_in + r * (W_hn h + b_hn))       the candidate new state
    r multiplies W_hn h + b_hn, bias included, after the matmul: PyTorch's and cuDNN's choice,
    which lets one matmul per input compute all three blocks before r is known."""
    # EXERCISE gru_gates: one matmul per input gives (B, 3H) blocks r, z, n; r and z are sigmoids of the sums, n = tanh(x_n + r * h_n) with r applied to the state's block after its bias
    gx = x_t @ p["w_ih"].T + p["b_ih"]                    # (B, 3H): the input's share
    gh = h @ p["w_hh"].T + p["b_hh"]                      # (B, 3H): the state's share
    x_r, x_z, x_n = gx.chunk(3, dim=1)                    # (B, H) each
    h_r, h_z, h_n = gh.chunk(3, dim=1)
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    return r, z, n
    # END EXERCISE


def gru_cell(x_t, h, p):
    """One GRU step: h_t = (1 - z) * n + z * h_{t-1}, a gated average of the candidate and the
    old state (z = 1 keeps the old state unchanged: the GRU's route for long memories)."""
    # EXERCISE gru_cell: h_t = (1 - z) n + z h
    r, z, n = gru_gates(x_t, h, p)
    return (1 - z) * n + z * h
    # END EXERCISE


def gru_cell_cho(x_t, h, p):
    """Cho et al. (2014), eq. 8: the reset gate scales h BEFORE the matmul,
    n = tanh(W_in x + b_in + W_hn (r * h) + b_hn). A valid GRU, but not the one nn.GRU computes
    (Keras offers both: reset_after=True is PyTorch's)."""
    H = h.shape[1]
    gx = x_t @ p["w_ih"].T + p["b_ih"]                    # (B, 3H)
    gh = h @ p["w_hh"][: 2 * H].T + p["b_hh"][: 2 * H]    # (B, 2H): r and z blocks only
    r = torch.sigmoid(gx[:, :H] + gh[:, :H])
    z = torch.sigmoid(gx[:, H:2 * H] + gh[:, H:])
    n = torch.tanh(gx[:, 2 * H:] + (r * h) @ p["w_hh"][2 * H:].T + p["b_hh"][2 * H:])
    return (1 - z) * n + z * h


def param_count(kind, input_size, hidden_size, num_layers=1, bidirectional=False):
    """Parameters of nn.RNN / nn.GRU / nn.LSTM (bias=True) by formula: per layer and
    direction, gates * H * (inputs + H) weights and 2 * gates * H biases (b_ih and b_hh);
    a layer above the first reads both directions of the layer below, H * directions inputs."""
    # EXERCISE param_count: per layer and direction: gates * H * (inputs + H) weights + 2 * gates * H biases; layer 0 reads input_size, higher layers H * directions
    gates, directions = GATES_PER_KIND[kind], 2 if bidirectional else 1
    total = 0
    for k in range(num_layers):
        n_in = input_size if k == 0 else hidden_size * directions
        total += directions * (gates * hidden_size * (n_in + hidden_size) + 2 * gates * hidden_size)
    return total
    # END EXERCISE


def check_against_nn_gru(run):
    dev = run.device
    x = torch.randn(BATCH, TIME, INPUT, device=dev)                    # (B, T, I)
    worst = 0.0
    with torch.no_grad():
        for layers in (1, LAYERS):
            ref = nn.GRU(INPUT, HIDDEN, num_layers=layers, batch_first=True).to(dev)
            h0 = basics.random_states(1, layers, BATCH, HIDDEN, dev)   # (L, B, H)
            ours = basics.run_stack(gru_cell, x, h0, basics.copy_weights(ref))
            label = (f"{layers} layers vs nn.GRU(num_layers={layers})" if layers > 1
                     else "1 layer vs nn.GRU")
            worst = max(worst, basics.compare(label, ours, ref(x, h0)))
        print(f"largest difference from nn.GRU: {worst:.2g}")
        ref_out, _ = ref(x, h0)
        out, _ = basics.run_stack(gru_cell_cho, x, h0, basics.copy_weights(ref))
        check.greater("Cho et al.'s variant (r before W_hn) vs nn.GRU: max |diff|",
                      (out - ref_out).abs().max().item(), VARIANT_MIN)
    return worst


def check_param_counts():
    """The formula against PyTorch's own count, for every kind and every size in COUNT_SIZES."""
    for kind, module in MODULES.items():
        ours, theirs = [], []
        for input_size, hidden_size, layers, bidirectional in COUNT_SIZES:
            net = module(input_size, hidden_size, num_layers=layers, bidirectional=bidirectional)
            ours.append(param_count(kind, input_size, hidden_size, layers, bidirectional))
            theirs.append(sum(p.numel() for p in net.parameters()))
        check.equal(f"{kind}: param_count vs sum(p.numel()) for (layers, bidirectional) = "
                    + ", ".join(f"({s[2]}, {s[3]})" for s in COUNT_SIZES), ours, theirs)


def gate_activations(run):
    """r, z and n of nn.GRU's random init (copied) over a random sequence, for the figure."""
    ref = nn.GRU(INPUT, DEMO_HIDDEN, batch_first=True).to(run.device)
    p = basics.copy_weights(ref)[0]
    x = torch.randn(1, 3 * TIME, INPUT, device=run.device)
    h = torch.zeros(1, DEMO_HIDDEN, device=run.device)
    seen = {name: [] for name in GATES + "h"}
    for t in range(x.shape[1]):
        for name, value in zip(GATES, gru_gates(x[:, t], h, p)):
            seen[name].append(value[0])
        h = gru_cell(x[:, t], h, p)
        seen["h"].append(h[0])
    return {name: torch.stack(v, dim=1).cpu() for name, v in seen.items()}   # (H, T) each


def main(args) -> dict:
    run = cli.start(args, __file__)
    torch.set_num_threads(1)                    # same numbers whatever the core count
    torch.backends.cudnn.allow_tf32 = False     # cuDNN's GRU may use TF32 on a GPU by default
    worst = check_against_nn_gru(run)
    check_param_counts()
    counts = {kind: param_count(kind, *FIGURE_SIZES) for kind in MODULES}
    print("parameters at input {}, hidden {}: ".format(*FIGURE_SIZES)
          + ", ".join(f"{kind} {n:,}" for kind, n in counts.items()))
    with torch.no_grad():
        gates = gate_activations(run)

    fig, axes = plt.subplots(1, 5, figsize=(17, 3.8), layout="constrained",
                             gridspec_kw={"width_ratios": [1, 1, 1, 1, 0.9]})
    names = {"r": "reset gate r", "z": "update gate z (1: keep h)", "n": "candidate n",
             "h": "state h"}
    for ax, name in zip(axes, GATES + "h"):
        signed = name in "nh"
        shown = ax.imshow(gates[name], aspect="auto", cmap="RdBu_r" if signed else "viridis",
                          vmin=-1 if signed else 0, vmax=1)
        fig.colorbar(shown, ax=ax, fraction=0.05)
        ax.set(title=names[name], xlabel="time step", ylabel="unit" if name == "r" else None)
    axes[-1].bar(list(counts), list(counts.values()), color=["0.6", "tab:green", "tab:blue"])
    for k, n in enumerate(counts.values()):
        axes[-1].text(k, n, f"{n:,}", ha="center", va="bottom", fontsize=8)
    axes[-1].set(title="parameters, input {}, hidden {}".format(*FIGURE_SIZES))
    fig.suptitle("GRU gates on a random sequence (random init), and the cost of gating")
    plot.save(fig, run, "gru.png")
    ratio = counts["LSTM"] / counts["GRU"]
    cho_diff = cho_without_b_hn()
    return cli.finish(run, {"max_diff_vs_nn_gru": worst,
                            **{f"params_{kind}": n for kind, n in counts.items()}}, answers={
        "lstm_vs_gru": ("equal" if abs(ratio - 1) < 0.01 else "a third more"
                        if abs(ratio - 4 / 3) < 0.01 else "twice" if abs(ratio - 2) < 0.01 else "other",
                        f"input {FIGURE_SIZES[0]}, hidden {FIGURE_SIZES[1]}: LSTM {counts['LSTM']:,}, "
                        f"GRU {counts['GRU']:,} = {ratio:.3f}x: 4 gate blocks vs 3 (gru.png, right)"),
        "cho_no_bias": ("yes" if cho_diff < 1e-5 else "no",
                        f"every b_hn = 0: Cho et al.'s variant vs nn.GRU's cell, max |diff| "
                        f"{cho_diff:.3g} (r * (W_hn h) is not W_hn (r * h))")})


def cho_without_b_hn():
    """Cho et al.'s variant against the cell nn.GRU computes, with every b_hn set to zero."""
    gen = torch.Generator().manual_seed(0)
    p = {"w_ih": torch.randn(3 * HIDDEN, INPUT, generator=gen, dtype=torch.float64),
         "w_hh": torch.randn(3 * HIDDEN, HIDDEN, generator=gen, dtype=torch.float64),
         "b_ih": torch.randn(3 * HIDDEN, generator=gen, dtype=torch.float64),
         "b_hh": torch.randn(3 * HIDDEN, generator=gen, dtype=torch.float64)}
    p["b_hh"][2 * HIDDEN:] = 0
    x = torch.randn(BATCH, INPUT, generator=gen, dtype=torch.float64)
    h = torch.randn(BATCH, HIDDEN, generator=gen, dtype=torch.float64)
    return (gru_cell(x, h, p) - gru_cell_cho(x, h, p)).abs().max().item()


# Predict, then run: answer in your copy (`python -m dlcourse exercise 06.05`) before running it;
# `python -m dlcourse check 06.05` compares your answers with what the run measures.
# PREDICT lstm_vs_gru (equal / a third more / twice): an LSTM and a GRU of the same input and hidden sizes: how many parameters does the LSTM have compared with the GRU?
# ANSWER lstm_vs_gru:
# PREDICT cho_no_bias (yes / no): if every b_hn were zero, would Cho et al.'s variant (r scales h before W_hn) compute the same as nn.GRU?
# ANSWER cho_no_bias:
# More to think about before running:
# - If z = 1 at every step, what is h_T? And if z = 0?
# - Would Cho et al.'s variant still equal nn.GRU if every b_hn were zero? If h0 were zero?

if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
