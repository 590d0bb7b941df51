"""06 - Bidirectional and stacked RNNs (phase 06, week 8)

Goal: build stacked and bidirectional networks from the RNN, LSTM and GRU cells of lessons 01,
      04 and 05 (a forward pass plus a pass over the time-reversed input, concatenated), lay
      their final states out as PyTorch's h_n (layers * 2, B, H), prove that they equal
      nn.RNN / nn.LSTM / nn.GRU(num_layers=2, bidirectional=True) with copied weights, and
      train both kinds on a tagging task whose label depends on a LATER token.
Run:  python phase06-rnn/06-bidirectional.py            (400 steps a model; 4-12 s on a 2-core CPU)
      python phase06-rnn/06-bidirectional.py --quick    (seconds, offline, used by the tests)
Expect: every "[check] ... vs nn.X" line ~1e-7 (outputs, h_n, and c_n for the LSTM); on
        "is x(t+3) larger than x(t)?" a forward-only GRU stays at the best any forward-only
        model can do (0.75 for 8 tokens) while the bidirectional one approaches 1: seed 0
        full, validation 0.746 vs 1.000, test (measured once, bidirectional) 1.000; quick
        0.74-0.75 vs 0.85-0.95 over seeds 0-4; bidirectional.png shows the curves and the
        accuracy per token value.
"""
from dlcourse import cli

STEPS = 400          # optimiser steps for each of the two taggers (full run)
QUICK_STEPS = 100    # --quick


def parse_args(argv=None):
    return cli.parser(__doc__, steps=(STEPS, QUICK_STEPS)).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # a mistyped flag fails here, before torch loads

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from dlcourse import check, data, lessons, plot
import matplotlib.pyplot as plt  # after dlcourse.plot, which picks a headless backend

basics = lessons.load("06.01")   # rnn_cell, run_layer, layer_state, stack_states, copy_weights,
                                 # init_params, random_states, compare, parity sizes
lstm = lessons.load("06.04")     # lstm_cell
gru = lessons.load("06.05")      # gru_cell

INPUT, HIDDEN, BATCH, TIME = basics.INPUT, basics.HIDDEN, basics.BATCH, basics.TIME
LAYERS = basics.LAYERS
ATOL = basics.ATOL   # float32 round-off is ~1e-7; a wrong wiring is off by ~0.01-1
KINDS = {            # cell, module, tensors in its state (an LSTM's is (h, c))
    "RNN": (basics.rnn_cell, nn.RNN, 1),
    "LSTM": (lstm.lstm_cell, nn.LSTM, 2),
    "GRU": (gru.gru_cell, nn.GRU, 1),
}

# The tagging task: tokens 0..VOCAB-1 drawn uniformly; the label at step t is 1 if the token
# AHEAD steps later is larger, x_{t+AHEAD} > x_t (the last AHEAD steps have no label). A
# forward-only network at step t has not seen x_{t+AHEAD}: its best guess depends on x_t alone.
VOCAB = 8            # token values
AHEAD = 3            # how far ahead the deciding token is
SEQ_LEN = 12         # tokens per sequence
EMBED = 8            # embedding size
TASK_HIDDEN = 24     # GRU hidden units per direction
LR = 1e-2            # Adam learning rate
BATCH_TRAIN = 64     # sequences per step
N_TRAIN, N_VAL, N_TEST = 2000, 500, 500   # sequences
EVAL_EVERY = 25      # steps between validation scores; each model keeps its best weights
SIGMAS = 5           # a forward-only model may beat its bound by sampling noise: 5 std errors


def run_rnn(cell, x, state, params, bidirectional=False):
    """A stack of layers, each one- or two-directional, laid out as PyTorch lays them out.
    x (B, T, I); state and params in h_n's order: layer 0 forward, [layer 0 reverse,] layer 1
    forward, ... (state (layers * directions, B, H), or a tuple of them for an LSTM).
    The reverse direction runs the same loop over the time-reversed input; its outputs are
    flipped back, so that out[:, t] describes x[:, t] from both sides. A layer above the first
    reads both directions: H * directions features.
    Returns the top layer's outputs (B, T, H * directions) and every final state."""
    # EXERCISE run_rnn: per layer k and direction d (state and params index j = k * directions + d): run_layer on x, or on x.flip(1) flipping the outputs back; concatenate the directions on dim 2 as the next layer's input; stack the final states
    directions = 2 if bidirectional else 1
    assert len(params) % directions == 0, "need one weight dict per layer and direction"
    finals = []
    for k in range(len(params) // directions):
        outs = []
        for d in range(directions):
            j = k * directions + d                         # layer k, direction d in h_n
            seq = x if d == 0 else x.flip(1)               # reverse: read x_{T-1} .. x_0
            out, final = basics.run_layer(cell, seq, basics.layer_state(state, j), params[j])
            outs.append(out if d == 0 else out.flip(1))    # back in time order, (B, T, H)
            finals.append(final)
        x = torch.cat(outs, dim=2)                         # (B, T, H * directions)
    return x, basics.stack_states(finals)
    # END EXERCISE


def check_against_torch(run):
    """Each cell, two layers, one and two directions, against the module with copied weights."""
    dev = run.device
    x = torch.randn(BATCH, TIME, INPUT, device=dev)                      # (B, T, I)
    worst = 0.0
    with torch.no_grad():
        for kind, (cell, module, n_states) in KINDS.items():
            for bidirectional in (False, True):
                ref = module(INPUT, HIDDEN, num_layers=LAYERS, batch_first=True,
                             bidirectional=bidirectional).to(dev)
                directions = 2 if bidirectional else 1
                state0 = basics.random_states(n_states, LAYERS * directions, BATCH, HIDDEN, dev)
                ours = run_rnn(cell, x, state0, basics.copy_weights(ref), bidirectional)
                name = (f"{kind}, {LAYERS} layers, "
                        + ("bidirectional" if bidirectional else "one direction"))
                worst = max(worst, basics.compare(f"{name} vs nn.{kind}", ours, ref(x, state0)))
            # What the top layer's outputs hold at the two ends, for the last bidirectional
            # network: the forward half at the LAST step and the reverse half at the FIRST
            # step are the two final states; out[:, -1] alone is not "the summary of x".
            out, state = ours
            h_n = basics.hidden(state)                                   # (L * 2, B, H)
            check.close(f"{kind}: out[:, -1, :H] is h_n[-2] (forward, after x_T-1)",
                        out[:, -1, :HIDDEN], h_n[-2], atol=ATOL)
            check.close(f"{kind}: out[:, 0, H:] is h_n[-1] (reverse, after x_0)",
                        out[:, 0, HIDDEN:], h_n[-1], atol=ATOL)
    print(f"largest difference from PyTorch's modules: {worst:.2g}")
    return worst


# ------------------------------------------------------------------------- the tagging task
def make_tokens(n, gen, device):
    """n sequences of SEQ_LEN uniform tokens (n, T) and their labels (n, T): 1 where the token
    AHEAD steps later is larger, 0 where it is not, -100 (ignored by cross_entropy) in the last
    AHEAD steps, which have no such token."""
    tokens = torch.randint(0, VOCAB, (n, SEQ_LEN), generator=gen)
    labels = torch.full((n, SEQ_LEN), -100)
    labels[:, :-AHEAD] = (tokens[:, AHEAD:] > tokens[:, :-AHEAD]).long()
    return tokens.to(device), labels.to(device)


def forward_only_bound(vocab):
    """The best accuracy of any model that has seen x_0..x_t but not x_{t+AHEAD}, which is
    independent of them: for x_t = v, P(x_{t+AHEAD} > v) = (vocab - 1 - v) / vocab, so guess the
    likelier answer; average over v."""
    return sum(max(vocab - 1 - v, v + 1) for v in range(vocab)) / vocab ** 2


class Tagger(nn.Module):
    """Embedding -> one GRU layer (lesson 05's cell), one or two directions -> a label per step."""

    def __init__(self, bidirectional):
        super().__init__()
        self.bidirectional = bidirectional
        self.directions = 2 if bidirectional else 1
        self.embed = nn.Embedding(VOCAB, EMBED)
        self.layers = basics.init_params(EMBED, TASK_HIDDEN, gates=3, directions=self.directions)
        self.head = nn.Linear(TASK_HIDDEN * self.directions, 2)

    def forward(self, tokens):                                           # (B, T)
        x = self.embed(tokens)                                           # (B, T, E)
        h0 = torch.zeros(self.directions, len(tokens), TASK_HIDDEN, device=tokens.device)
        out, _ = run_rnn(gru.gru_cell, x, h0, self.layers, self.bidirectional)   # (B, T, D*H)
        return self.head(out)                                            # (B, T, 2)


@torch.no_grad()
def accuracy(model, tokens, labels):
    """Share of labelled steps predicted right; also, for every labelled step, whether it was
    right and its token x_t (both flat), for the accuracy per token value."""
    labelled = labels != -100                                            # (n, T)
    right = (model(tokens).argmax(-1) == labels)[labelled]
    return right.float().mean().item(), (right, tokens[labelled])


def train_tagger(run, bidirectional, splits):
    torch.manual_seed(run.seed)                  # the same draws for both kinds of model
    model = Tagger(bidirectional).to(run.device)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    (tokens, labels), val = splits["train"], splits["val"]
    order = torch.Generator().manual_seed(run.seed)
    history, best = {"step": [], "val_acc": []}, (-1.0, None, 0)
    for step in range(1, run.steps + 1):
        idx = torch.randint(0, len(tokens), (BATCH_TRAIN,), generator=order)
        logits = model(tokens[idx])                                      # (B, T, 2)
        loss = F.cross_entropy(logits.flatten(0, 1), labels[idx].flatten(), ignore_index=-100)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % EVAL_EVERY == 0 or step == run.steps:
            acc, _ = accuracy(model, *val)
            history["step"].append(step)
            history["val_acc"].append(acc)
            if acc > best[0]:
                best = (acc, {k: v.clone() for k, v in model.state_dict().items()}, step)
    model.load_state_dict(best[1])
    return model, history, best[0]


def main(args) -> dict:
    run = cli.start(args, __file__)
    torch.set_num_threads(1)                    # same numbers whatever the core count
    torch.backends.cudnn.allow_tf32 = False     # cuDNN's RNNs may use TF32 on a GPU by default
    worst = check_against_torch(run)

    gen = torch.Generator().manual_seed(run.seed)
    data.announce("look-ahead tagging", "generated",
                  detail=f"{N_TRAIN}/{N_VAL}/{N_TEST} sequences of {SEQ_LEN} tokens from "
                         f"{VOCAB}; label at t: x(t+{AHEAD}) > x(t)")
    splits = {name: make_tokens(n, gen, run.device)
              for name, n in (("train", N_TRAIN), ("val", N_VAL), ("test", N_TEST))}
    bound = forward_only_bound(VOCAB)
    results = {}
    for bidirectional in (False, True):
        name = "bidirectional" if bidirectional else "forward only"
        results[name] = train_tagger(run, bidirectional, splits)
        print(f"{name}: best validation accuracy {results[name][2]:.3f}")
    uni, bi = results["forward only"][2], results["bidirectional"][2]
    n_val = N_VAL * (SEQ_LEN - AHEAD)            # labelled steps in the validation set
    noise = SIGMAS * math.sqrt(bound * (1 - bound) / n_val)
    print(f"best possible without seeing x(t+{AHEAD}): {bound:.3f}")
    check.less(f"forward-only validation accuracy vs that bound + {SIGMAS} std errors "
               "(it cannot see the future)", uni, bound + noise)
    check.greater("bidirectional vs forward-only validation accuracy", bi, uni)
    # Select on validation, then score the chosen model once on the test split.
    chosen = max(results, key=lambda name: results[name][2])
    test_acc, _ = accuracy(results[chosen][0], *splits["test"])
    print(f"chosen on validation: {chosen}; its test accuracy {test_acc:.3f} (measured once)")
    check.greater(f"test accuracy of the chosen ({chosen}) model vs the forward-only bound",
                  test_acc, bound + noise)

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.3), layout="constrained")
    val_tokens, val_labels = splits["val"]
    values = torch.arange(VOCAB)
    for name, colour in (("forward only", "tab:red"), ("bidirectional", "tab:blue")):
        model, history, _ = results[name]
        axes[0].plot(history["step"], history["val_acc"], color=colour, label=name)
        _, (right, current) = accuracy(model, val_tokens, val_labels)
        per_value = [right[current == v].float().mean().item() for v in range(VOCAB)]
        axes[1].plot(values, per_value, "o-", color=colour, label=name)
    for ax in axes:
        ax.set_ylim(0.4, 1.02)
    axes[0].axhline(bound, color="k", ls="--", label="best forward-only")
    axes[0].set(xlabel="step", ylabel="validation accuracy",
                title=f"is x(t+{AHEAD}) larger than x(t)?")
    axes[0].legend()
    best_guess = [max(VOCAB - 1 - v, v + 1) / VOCAB for v in range(VOCAB)]
    axes[1].plot(values, best_guess, "k--", label="best forward-only: max(P(larger), P(not))")
    axes[1].set(xlabel="current token x(t)", ylabel="validation accuracy",
                title="accuracy by the current token")
    axes[1].legend(fontsize=8)
    plot.save(fig, run, "bidirectional.png")
    hn1, hn1_diff = which_state_is_h_n_1()
    return cli.finish(run, {"steps": run.steps, "max_diff_vs_torch": worst,
                            "val_acc_forward": uni, "val_acc_bidirectional": bi,
                            "forward_only_bound": bound, "chosen": chosen, "test_acc": test_acc},
                      answers={
        "h_n_1": (hn1, f"h_n[1] of a 2-layer bidirectional nn.GRU vs the reverse state of its "
                  f"layer 0 alone: max |diff| {hn1_diff:.2g}; order: layer 0 fwd, layer 0 rev, "
                  "layer 1 fwd, layer 1 rev"),
        "better_tagger": (chosen, f"best validation accuracy: forward only {uni:.3f}, "
                          f"bidirectional {bi:.3f}; best possible without x(t+{AHEAD}) "
                          f"{bound:.3f} (bidirectional.png, left)")})


def which_state_is_h_n_1():
    """h_n[1] of nn.GRU(bidirectional=True, num_layers=2): layer 0's reverse state (a one-layer
    copy with the same layer-0 weights gives it) or layer 1's forward one? Returns the answer
    and the difference from layer 0's reverse state."""
    torch.manual_seed(0)
    two = nn.GRU(INPUT, HIDDEN, num_layers=2, batch_first=True, bidirectional=True)
    one = nn.GRU(INPUT, HIDDEN, num_layers=1, batch_first=True, bidirectional=True)
    one.load_state_dict({k: v for k, v in two.state_dict().items() if "_l0" in k})
    x = torch.randn(BATCH, TIME, INPUT)
    with torch.no_grad():
        diff = (two(x)[1][1] - one(x)[1][1]).abs().max().item()
    return ("layer 0 reverse" if diff < 1e-6 else "layer 1 forward"), diff


# Predict, then run: answer in your copy (`python -m dlcourse exercise 06.06`) before running it;
# `python -m dlcourse check 06.06` compares your answers with what the run measures.
# PREDICT h_n_1 (layer 1 forward / layer 0 reverse): nn.GRU(bidirectional=True, num_layers=2): whose final state is h_n[1]?
# ANSWER h_n_1:
# PREDICT better_tagger (forward only / bidirectional): tagging "is the token 3 steps ahead larger than this one?": which GRU tagger wins on validation?
# ANSWER better_tagger:
# More to think about before running:
# - For a sentence classifier on a bidirectional RNN, why is out[:, -1] a poor summary?
# - Why could a bidirectional network not generate text one token at a time?

if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
