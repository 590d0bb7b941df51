"""04 - LSTM from scratch (phase 06, week 8)

Goal: write the LSTM cell with PyTorch's gate order (i, f, g, o), unroll it with lesson 01's
      loop, and prove that outputs, h_n and c_n equal nn.LSTM's with copied weights, for one
      layer and for two; see that the same weights read in another library's gate order give
      a different network, and what the forget gate's bias does to the cell's memory.
Run:  python phase06-rnn/04-lstm.py            (no training: the full run is the quick run)
      python phase06-rnn/04-lstm.py --quick    (seconds, offline, used by the tests)
Expect: "[check] 1 layer vs nn.LSTM: outputs", h_n and c_n ~1e-7, likewise for 2 layers;
        the same weights read in another format's gate order differ from nn.LSTM by ~0.5-0.7;
        with zero weights c_t equals sigmoid(b_f)^t c_0 exactly (~1e-8); the first input's
        trace in the cell state after 40 steps, |dc_t/dx_0|, grows with the forget bias by
        orders of magnitude (~1e-25 at -2, ~1 at +4); lstm.png shows gates and memory curves.
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

GATES = "ifgo"       # PyTorch's (and cuDNN's) order of the four H-row blocks in every weight
OTHER_ORDERS = {     # the same four blocks as other formats store them
    "igfo": "TensorFlow 1's LSTMCell (i, j=g, f, o)",
    "iofg": "ONNX's LSTM (i, o, f, c=g)",
}
INPUT, HIDDEN, BATCH, TIME = basics.INPUT, basics.HIDDEN, basics.BATCH, basics.TIME
LAYERS = basics.LAYERS
ATOL = basics.ATOL   # float32 round-off is ~1e-7; a wrong formula is off by ~0.01-1
WRONG_MIN = 1e-2     # a wrong gate order must miss nn.LSTM by more than this

# The forget-gate demos
FORGET_BIASES = (-2.0, 0.0, 2.0, 4.0)   # added to the f block of b_hh (0: PyTorch's init)
DEMO_HIDDEN = 32     # hidden units of the random LSTM in the memory demo
MEMORY_STEPS = 40    # silent steps after the first input


def lstm_gates(x_t, h, p):
    """The four gates at one step, each (B, H). One matmul per input computes all four:
    rows [0:H) of the weights are i, [H:2H) f, [2H:3H) g, [3H:4H) o (PyTorch's order)."""
    # EXERCISE lstm_gates: z = x_t W_ih^T + b_ih + h W_hh^T + b_hh is (B, 4H): split it into the i, f, g, o blocks in that order; sigmoid for i, f, o and tanh for g
    z = x_t @ p["w_ih"].T + p["b_ih"] + h @ p["w_hh"].T + p["b_hh"]   # (B, 4H)
    i, f, g, o = z.chunk(4, dim=1)                                     # (B, H) each
    return torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    # END EXERCISE


def lstm_cell(x_t, state, p):
    """One LSTM step on state (h, c), both (B, H):
        c_t = f * c_{t-1} + i * g     the cell state: keep a share f of the old memory, write i*g
        h_t = o * tanh(c_t)           the output: a gated, squashed view of the memory
    The sum in c_t (not a product of Jacobians) is what lets gradients cross many steps."""
    # EXERCISE lstm_cell: unpack (h, c), get the gates, c_t = f c + i g, h_t = o tanh(c_t); return (h_t, c_t)
    h, c = state
    i, f, g, o = lstm_gates(x_t, h, p)
    c = f * c + i * g
    return o * torch.tanh(c), c
    # END EXERCISE


def reorder_gates(p, src, dst):
    """Rearrange the H-row gate blocks of every tensor in p from order `src` to `dst`
    (strings of gate letters). Converting weights between formats is exactly this."""
    out = {}
    for key, w in p.items():
        blocks = dict(zip(src, w.chunk(len(src), dim=0)))
        out[key] = torch.cat([blocks[gate] for gate in dst], dim=0)
    return out


def gate_rows(gate, hidden_size):
    """The rows of gate `gate` ('i', 'f', 'g' or 'o') in a (4H, ...) weight or (4H,) bias."""
    k = GATES.index(gate)
    return slice(k * hidden_size, (k + 1) * hidden_size)


def check_against_nn_lstm(run):
    dev = run.device
    x = torch.randn(BATCH, TIME, INPUT, device=dev)                    # (B, T, I)
    worst = 0.0
    with torch.no_grad():
        for layers in (1, LAYERS):
            ref = nn.LSTM(INPUT, HIDDEN, num_layers=layers, batch_first=True).to(dev)
            state0 = basics.random_states(2, layers, BATCH, HIDDEN, dev)   # (h0, c0), (L, B, H)
            ours = basics.run_stack(lstm_cell, x, state0, basics.copy_weights(ref))
            label = (f"{layers} layers vs nn.LSTM(num_layers={layers})" if layers > 1
                     else "1 layer vs nn.LSTM")
            worst = max(worst, basics.compare(label, ours, ref(x, state0)))
        print(f"largest difference from nn.LSTM: {worst:.2g}")

        # The same numbers, read in another format's gate order: the network changes silently
        # (no shape error: every block is (H, ...)). Only a parity check like the one above
        # tells a correct weight conversion from a wrong one.
        ref_out, _ = ref(x, state0)
        params = basics.copy_weights(ref)
        misread_diff = {}
        for order, where in OTHER_ORDERS.items():
            misread = [reorder_gates(p, GATES, order) for p in params]
            out, _ = basics.run_stack(lstm_cell, x, state0, misread)
            diff = (out - ref_out).abs().max().item()
            misread_diff[order] = diff
            check.greater(f"weights read in {where} order differ from nn.LSTM (max |diff|)",
                          diff, WRONG_MIN)
            back = [reorder_gates(p, order, GATES) for p in misread]
            out, _ = basics.run_stack(lstm_cell, x, state0, back)
            check.close(f"converted back from {order} to {GATES}: outputs", out, ref_out, atol=ATOL)
    return worst, misread_diff


def check_forget_closed_form(run):
    """All weights zero, b_i = b_g = 0: the input writes i * g = 0.5 * tanh(0) = 0, so the
    memory only decays: c_t = sigmoid(b_f)^t c_0 and h_t = sigmoid(b_o) tanh(c_t), exactly."""
    dev = run.device
    T = MEMORY_STEPS
    b_f = torch.linspace(-3, 3, HIDDEN, device=dev)      # a different forget bias per unit
    b_o = torch.linspace(1, -1, HIDDEN, device=dev)
    bias = torch.zeros(4 * HIDDEN, device=dev)
    bias[gate_rows("f", HIDDEN)], bias[gate_rows("o", HIDDEN)] = b_f, b_o
    p = {"w_ih": torch.zeros(4 * HIDDEN, INPUT, device=dev),
         "w_hh": torch.zeros(4 * HIDDEN, HIDDEN, device=dev),
         "b_ih": torch.zeros(4 * HIDDEN, device=dev), "b_hh": bias}
    h0, c0 = basics.random_states(2, 1, BATCH, HIDDEN, dev)
    x = torch.randn(BATCH, T, INPUT, device=dev)
    _, (h_T, c_T) = basics.run_layer(lstm_cell, x, (h0[0], c0[0]), p)
    expected_c = torch.sigmoid(b_f) ** T * c0[0]                                  # (B, H)
    check.close(f"zero weights: c_T = sigmoid(b_f)^{T} c_0", c_T, expected_c, atol=1e-6)
    check.close("zero weights: h_T = sigmoid(b_o) tanh(c_T)", h_T,
                torch.sigmoid(b_o) * torch.tanh(expected_c), atol=1e-6)


def memory_traces(run):
    """How long does the cell state remember the input at t = 0? A random LSTM (nn.LSTM's
    init) reads a random x_0, then zeros; the trace of x_0 in c_t is |u . dc_t/dx_0| for a
    random unit weighting u, by autograd, averaged over sequences and input features. The
    derivative is exact: a difference of two runs, with and without x_0, would drown in
    float32 round-off once it fell below ~1e-7 of c.
    Shifting the forget bias moves sigmoid(f) towards 0 (forget) or 1 (remember)."""
    dev = run.device
    ref = nn.LSTM(INPUT, DEMO_HIDDEN, batch_first=True).to(dev)
    base = basics.copy_weights(ref)[0]
    x = torch.zeros(BATCH, 1 + MEMORY_STEPS, INPUT, device=dev)         # (B, 1 + T, I)
    x[:, 0] = torch.randn(BATCH, INPUT, device=dev)                     # then silence
    u = torch.randn(BATCH, DEMO_HIDDEN, device=dev)                     # weights of the units
    zeros = (torch.zeros(BATCH, DEMO_HIDDEN, device=dev),) * 2
    traces, forget_means = {}, {}
    for shift in FORGET_BIASES:
        p = dict(base)
        p["b_hh"] = base["b_hh"].clone()
        p["b_hh"][gate_rows("f", DEMO_HIDDEN)] += shift
        x0 = x[:, 0].clone().requires_grad_(True)
        with torch.enable_grad():
            inputs = torch.cat([x0[:, None], x[:, 1:]], dim=1)            # (B, 1 + T, I)
            _, c_seq = zip(*unroll_states(inputs, zeros, p))
            trace = [torch.autograd.grad((c_t * u).sum(), x0, retain_graph=True)[0].abs().mean()
                     for c_t in c_seq]
        traces[shift] = torch.stack(trace).cpu()                          # (1 + T,)
        at_rest = lstm_gates(x[:, 1], zeros[0], p)[1]                    # f with x = 0, h = 0
        forget_means[shift] = at_rest.mean().item()                      # = mean sigmoid(b_f)
    return traces, forget_means


def unroll_states(x, state, p):
    """Every state (h_t, c_t) of one layer over x (B, T, I): lesson 01's run_layer keeps
    only the h_t, and the demos need c_t and the gates too."""
    states = []
    for t in range(x.shape[1]):
        state = lstm_cell(x[:, t], state, p)
        states.append(state)
    return states


def gate_activations(run):
    """The gates of nn.LSTM's random init (copied) over a random sequence, for the figure."""
    ref = nn.LSTM(INPUT, DEMO_HIDDEN, batch_first=True).to(run.device)
    p = basics.copy_weights(ref)[0]
    x = torch.randn(1, 3 * TIME, INPUT, device=run.device)
    state = (torch.zeros(1, DEMO_HIDDEN, device=run.device),) * 2
    seen = {gate: [] for gate in GATES + "c"}
    for t in range(x.shape[1]):
        for gate, value in zip(GATES, lstm_gates(x[:, t], state[0], p)):
            seen[gate].append(value[0])
        state = lstm_cell(x[:, t], state, p)
        seen["c"].append(state[1][0])
    return {gate: torch.stack(v, dim=1).cpu() for gate, v in seen.items()}   # (H, T) each


def main(args) -> dict:
    run = cli.start(args, __file__)
    torch.set_num_threads(1)                    # same numbers whatever the core count
    torch.backends.cudnn.allow_tf32 = False     # cuDNN's LSTM may use TF32 on a GPU by default
    worst, misread = check_against_nn_lstm(run)
    with torch.no_grad():
        check_forget_closed_form(run)
        traces, forget_means = memory_traces(run)
        gates = gate_activations(run)
    final = {shift: trace[-1].item() for shift, trace in traces.items()}
    for shift in FORGET_BIASES:
        print(f"forget bias shift {shift:+.0f}: mean f at rest {forget_means[shift]:.2f}, "
              f"|dc_t/dx_0| after {MEMORY_STEPS} steps {final[shift]:.2e}")
    ordered = [final[s] for s in FORGET_BIASES]
    check.true(f"the trace of x_0 in c after {MEMORY_STEPS} steps grows with the forget bias",
               all(a < b for a, b in zip(ordered, ordered[1:])),
               " < ".join(f"{v:.1e}" for v in ordered))

    fig = plt.figure(figsize=(16, 6.5), layout="constrained")
    grid = fig.add_gridspec(2, 5)
    names = {"i": "input gate i", "f": "forget gate f", "g": "candidate g = tanh(...)",
             "o": "output gate o", "c": "cell state c"}
    for k, gate in enumerate(GATES + "c"):
        ax = fig.add_subplot(grid[0, k])
        signed = gate in "gc"
        limit = max(1.0, gates[gate].abs().max().item()) if signed else 1
        shown = ax.imshow(gates[gate], aspect="auto", cmap="RdBu_r" if signed else "viridis",
                          vmin=-limit if signed else 0, vmax=limit)
        fig.colorbar(shown, ax=ax, fraction=0.05)
        ax.set(title=names[gate], xlabel="time step", ylabel="unit" if k == 0 else None)
    ax = fig.add_subplot(grid[1, :])
    for shift in FORGET_BIASES:
        ax.semilogy(traces[shift],
                    label=f"forget bias {shift:+.0f} (f at rest {forget_means[shift]:.2f})")
    ax.set(xlabel="time step t", ylabel="mean |u . dc_t / dx_0|",
           title="how long the first input stays in the cell state (random nn.LSTM weights)")
    ax.legend()
    fig.suptitle("LSTM gates on a random sequence (random init), and the forget gate's memory")
    plot.save(fig, run, "lstm.png")
    f_rows = gate_rows("f", HIDDEN)
    quarter = ("first", "second", "third", "fourth")[f_rows.start // HIDDEN]
    longest = max(FORGET_BIASES, key=lambda s: final[s])
    return cli.finish(run, {"max_diff_vs_nn_lstm": worst,
                            **{f"trace_after_{MEMORY_STEPS}_bias_{s:+.0f}": final[s]
                               for s in FORGET_BIASES}}, answers={
        "forget_rows": (quarter, f"rows {f_rows.start}:{f_rows.stop} of weight_ih_l0 "
                        f"({4 * HIDDEN}, {INPUT}) are f: the memory demo shifts exactly those "
                        "(lstm.png, bottom)"),
        "tf1_weights": ("a quiet wrong net" if misread["igfo"] > WRONG_MIN else "the same net",
                        f"TensorFlow 1's i, j, f, o order read as PyTorch's: no error, outputs off "
                        f"by up to {misread['igfo']:.3g} (the check lines of the output)"),
        "longest_memory": (f"{longest:+.0f}", ", ".join(f"bias {s:+.0f}: {final[s]:.1e}"
                                                        for s in FORGET_BIASES)
                           + f" = |dc/dx_0| after {MEMORY_STEPS} steps (lstm.png, bottom)")})


# Predict, then run: answer in your copy (`python -m dlcourse exercise 06.04`) before running it;
# `python -m dlcourse check 06.04` compares your answers with what the run measures.
# PREDICT forget_rows (first / second / third / fourth): nn.LSTM's weight_ih_l0 is (4H, I): which quarter of its rows belongs to the forget gate?
# ANSWER forget_rows:
# PREDICT tf1_weights (an error / a quiet wrong net / the same net): load TensorFlow 1 LSTM weights (gate order i, g, f, o) into nn.LSTM without reordering: what do you get?
# ANSWER tf1_weights:
# PREDICT longest_memory (-2 / +0 / +2 / +4): shifting the forget gate's bias by -2, 0, +2 or +4: which keeps the first input's trace in the cell state longest?
# ANSWER longest_memory:
# More to think about before running:
# - Many recipes start the forget bias at 1 (Gers et al. 2000; Jozefowicz et al. 2015). PyTorch
#   does not. Which curve of the figure does that move a network towards?

if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
