"""08 - Attention in seq2seq (phase 06, week 9)

Goal: give lesson 07's decoder attention: at every step it scores all encoder states
      (dot, general: Luong's multiplicative scores; additive: Bahdanau's), takes a masked
      softmax over the source and reads a weighted average; check the pieces against
      PyTorch and their formulas, then train with and without attention on the same batches
      and test on strings LONGER than any seen in training.
Run:  python phase06-rnn/08-attention-basic.py            (4 models x 3000 steps; 85-93 s on a
                                                           busy 2-core CPU)
      python phase06-rnn/08-attention-basic.py --quick    (seconds, offline, used by the tests)
Expect: dot attention equals F.scaled_dot_product_attention (scale 1, masked: max |diff| 0 on the
        CPU); weights sum to 1 (~2e-7) and are exactly 0 at PAD; the general and additive scores
        equal their formulas (~5e-7, ~6e-8); teacher-forced and greedy logits agree for every
        attention model (<= 5e-5). Full, seeds 0-4: exact-sequence accuracy at the training
        lengths 0.92-0.94 without attention, >= 0.997 with; at 9-10 digits, never seen,
        0.11-0.19 without attention vs 0.27-0.77 with (seed 0: 0.106 vs dot 0.452, general
        0.545, additive 0.585); at 11-12 digits every model is back near 0 (<= 0.023):
        attention stretches the reach, it does not remove the limit. Quick (150 steps; none,
        dot, additive; seeds 0-4): at 9-10 digits <= 0.01 vs 0.21-0.44.
        attention_heatmap.png: the anti-diagonal at 8 and 10 digits, and where it breaks at 12;
        length_generalisation.png: accuracy by length for every model.
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked

STEPS = 3000         # optimiser steps for each model (full run)
QUICK_STEPS = 150    # --quick


def parse_args(argv=None):
    return cli.parser(__doc__, steps=(STEPS, QUICK_STEPS)).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import torch
import torch.nn as nn
import torch.nn.functional as F

from dlcourse import check, data, lessons, plot
import matplotlib.pyplot as plt  # after dlcourse.plot, which picks the headless backend

s2s = lessons.load("06.07")   # lesson 07: the task, batching, Seq2Seq, masked loss, train, evaluate

LONG_LENGTHS = (9, 10)    # test strings just longer than any in training (s2s.TRAIN_LENGTHS):
                          # where attention must beat no attention
FAR_LENGTHS = (11, 12)    # longer still: reported and plotted, not asserted (the queries were
                          # learned only for positions the training lengths reach; the lead shrinks)
ATTN = 32                 # additive attention's hidden size (its W_q, W_k map to this)
MODELS = ("none", "dot", "general", "additive")   # trained in the full run
N_VAL = 1000              # validation strings, training lengths (select each model's checkpoint)
N_TEST = 3000             # test strings, lengths uniform from the shortest training length to
                          # FAR_LENGTHS[1] (measured once)
EVALS = 10                # validation passes per model
MARGIN = 0.05             # each attention model must beat no attention by this much exact-sequence
                          # accuracy on LONG_LENGTHS; measured gaps: >= 0.18 quick (seeds 0-4),
                          # >= 0.08 full (seeds 0-4), where no attention gets 0.11-0.19 right
QUICK = dict(MODELS=("none", "dot", "additive"), N_VAL=300, N_TEST=600, EVALS=4)   # --quick


# --- attention: score, masked softmax, weighted average ------------------------------------
class DotScore(nn.Module):
    """Luong 'dot': score(q, k) = q . k (query and key of the same size)."""

    def forward(self, q, k):                                   # q (B, T, H), k (B, S, H)
        return q @ k.transpose(1, 2)                           # (B, T, S)


class GeneralScore(nn.Module):
    """Luong 'general': score(q, k) = q^T W k, a learned bilinear form."""

    def __init__(self, hidden):
        super().__init__()
        self.W = nn.Linear(hidden, hidden, bias=False)         # W k = k @ W.weight^T

    def forward(self, q, k):
        return q @ self.W(k).transpose(1, 2)                   # (B, T, S)


class AdditiveScore(nn.Module):
    """Bahdanau: score(q, k) = v^T tanh(W_q q + W_k k), a one-hidden-layer net on the pair."""

    def __init__(self, hidden, attn=ATTN):
        super().__init__()
        self.Wq = nn.Linear(hidden, attn, bias=False)
        self.Wk = nn.Linear(hidden, attn)                      # its bias is the layer's bias
        self.v = nn.Linear(attn, 1, bias=False)

    def forward(self, q, k):
        # every (query, key) pair: (B, T, 1, A) + (B, 1, S, A) -> (B, T, S, A)
        # EXERCISE additive_score: broadcast W_q q as (B, T, 1, A) against W_k k as (B, 1, S, A), tanh, then v to one number per pair: (B, T, S)
        pairs = torch.tanh(self.Wq(q).unsqueeze(2) + self.Wk(k).unsqueeze(1))
        return self.v(pairs).squeeze(-1)                       # (B, T, S)
        # END EXERCISE


def make_score(kind, hidden=s2s.HIDDEN):
    return {"dot": DotScore, "general": lambda: GeneralScore(hidden),
            "additive": lambda: AdditiveScore(hidden)}[kind]()


def masked_softmax(scores, mask):
    """Softmax over the source axis with PAD positions removed: exp(-inf) = 0, so their
    weight is exactly 0 and the real positions' weights sum to 1.
    scores (B, T, S), mask (B, S) True at real tokens -> weights (B, T, S)."""
    # EXERCISE masked_softmax: set the scores at PAD sources to -inf (one mask for every query step t), then softmax over the source axis
    scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))   # same mask for every t
    return scores.softmax(dim=-1)
    # END EXERCISE


def attend(score, query, keys, values, mask):
    """context_t = sum_s a_ts v_s with a_t = softmax_s(score(q_t, k_s)) over real positions.
    query (B, T, H), keys (B, S, H), values (B, S, Dv) -> context (B, T, Dv), weights (B, T, S)."""
    weights = masked_softmax(score(query, keys), mask)
    return weights @ values, weights                           # (B, T, S) @ (B, S, Dv)


class AttentionSeq2Seq(s2s.Seq2Seq):
    """Lesson 07's model with Luong-style attention: the decoder GRU steps as before (from the
    encoder's final state), then its output h_t queries the encoder states, and the context c_t
    joins it: h~_t = tanh(W_c [c_t; h_t]), logits = out(h~_t). Only `decode` changes, so the
    teacher-forced and greedy paths, the loss and the training loop are lesson 07's.
    (Bahdanau et al. attend with the previous state s_{t-1} and feed c_t into the GRU's input;
    that needs a Python loop over t even in training. Here only the score function is
    Bahdanau's, and teacher forcing still runs every step in one GRU call.)"""

    def __init__(self, kind, hidden=s2s.HIDDEN):
        super().__init__(hidden=hidden)
        self.kind = kind
        self.score = make_score(kind, hidden)
        self.combine = nn.Linear(2 * hidden, hidden)           # Luong's W_c

    def decode_with_weights(self, tokens, state, memory):
        # EXERCISE decode_with_weights: run the decoder GRU on the embedded tokens; its outputs query the encoder states (keys and values, with the mask) via attend; logits = out(tanh(combine([context; outputs]))); return logits, state, weights
        outputs, state = self.decoder(self.tgt_embed(tokens), state)   # (B, T, H)
        context, weights = attend(self.score, outputs, memory.states, memory.states,
                                  memory.mask)                 # (B, T, H), (B, T, S)
        mixed = torch.tanh(self.combine(torch.cat([context, outputs], dim=-1)))   # (B, T, H)
        return self.out(mixed), state, weights
        # END EXERCISE

    def decode(self, tokens, state, memory):
        logits, state, _ = self.decode_with_weights(tokens, state, memory)
        return logits, state


def build(kind):
    return s2s.Seq2Seq() if kind == "none" else AttentionSeq2Seq(kind)


@torch.no_grad()
def attention_weights(model, b):
    """Teacher-force the greedy output and return (greedy tokens, weights (B, T, S))."""
    tokens, _ = s2s.greedy_decode(model, b.src, b.lengths, b.tgt_out.shape[1])
    model.eval()
    memory = model.encode(b.src, b.lengths)
    _, _, weights = model.decode_with_weights(s2s.shift_right(tokens), memory.final, memory)
    model.train()
    return tokens, weights


# --- self-checks of the attention code ----------------------------------------------------
def check_attention_pieces(run):
    """Each score against a formula computed another way, and dot attention against
    PyTorch's scaled_dot_product_attention, on a padded batch with keys != values."""
    gen = torch.Generator().manual_seed(run.seed)
    B, T, S, H, Dv = 3, 5, 7, 6, 4                           # all different: no axis can hide
    q, k = torch.randn(B, T, H, generator=gen), torch.randn(B, S, H, generator=gen)
    v = torch.randn(B, S, Dv, generator=gen)
    lengths = torch.tensor([S, 4, 2])
    mask = torch.arange(S) < lengths.unsqueeze(1)             # (B, S)
    q, k, v, mask = (t.to(run.device) for t in (q, k, v, mask))

    context, weights = attend(DotScore(), q, k, v, mask)
    # the library's fused attention with scale=1: Luong's dot score is not divided by sqrt(H)
    # (the Transformer's is, phase 07); a boolean attn_mask is True where a query may attend
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask.unsqueeze(1), scale=1.0)
    check.close("dot attention context vs F.scaled_dot_product_attention (scale 1, masked)",
                context, ref, atol=1e-5)
    check.close("attention weights sum to 1 over the source positions", weights.sum(-1),
                torch.ones(B, T, device=run.device), atol=1e-6)
    check.equal("attention weights at PAD positions (all exactly 0)",
                weights.masked_select(~mask.unsqueeze(1)).abs().max().item(), 0.0)

    torch.manual_seed(run.seed)
    general, additive = GeneralScore(H).to(run.device), AdditiveScore(H, attn=5).to(run.device)
    with torch.no_grad():
        check.close("general score vs einsum q^T W k", general(q, k),
                    torch.einsum("bth,hg,bsg->bts", q, general.W.weight, k), atol=1e-5)
        Wq, Wk, bk, vv = (additive.Wq.weight, additive.Wk.weight, additive.Wk.bias,
                          additive.v.weight[0])
        ref = torch.stack([torch.stack([torch.stack(
            [vv @ torch.tanh(Wq @ q[b, t] + Wk @ k[b, s] + bk) for s in range(S)])
            for t in range(T)]) for b in range(B)])           # one (b, t, s) at a time
        check.close("additive score vs v . tanh(Wq q_t + Wk k_s + b), pair by pair",
                    additive(q, k), ref, atol=1e-5)


def check_trained_weights(name, model, b):
    """On a padded batch, the trained model's weights: sum 1 over the source, 0 at PAD."""
    _, weights = attention_weights(model, b)                  # (B, T, S)
    pad = ~b.src.ne(s2s.PAD).unsqueeze(1).expand_as(weights)
    check.close(f"{name}: weights sum to 1 over the source ({weights.shape[0]} strings, "
                f"lengths {min(b.lengths.tolist())}-{max(b.lengths.tolist())})",
                weights.sum(-1), torch.ones(weights.shape[:2], device=weights.device), atol=1e-5)
    check.equal(f"{name}: weights at PAD positions (all exactly 0)",
                weights[pad].abs().max().item(), 0.0)


def mirrored_peak_rate(model, b):
    """Reversal emits source position n-1-t at step t: the fraction of steps (EOS excluded)
    whose largest attention weight falls exactly there."""
    _, weights = attention_weights(model, b)
    peak = weights.argmax(-1)                                  # (B, T)
    n = b.lengths.to(peak.device).unsqueeze(1)                 # (B, 1)
    t = torch.arange(peak.shape[1], device=peak.device)       # (T,)
    steps = t < n                                              # the digit steps
    return ((peak == n - 1 - t) & steps).sum().item() / steps.sum().item()


# --- figures -------------------------------------------------------------------------------
def plot_heatmaps(run, name, model, examples):
    fig, axes = plt.subplots(1, len(examples), figsize=(5 * len(examples), 4.8),
                             layout="constrained")
    for ax, (title, b) in zip(axes, examples):
        tokens, weights = attention_weights(model, b)
        n = b.lengths[0].item()
        src = b.src[0, :n].tolist()
        out = tokens[0].tolist()
        rows = out.index(s2s.EOS) + 1 if s2s.EOS in out else len(out)   # up to its EOS
        shown = ax.imshow(weights[0, :rows, :n].cpu(), cmap="viridis", vmin=0, vmax=1)
        ax.set_xticks(range(n), [s2s.to_text([x]) for x in src])
        ax.set_yticks(range(rows), [s2s.to_text([x]) if x != s2s.EOS else "EOS"
                                    for x in out[:rows]])
        ax.set(xlabel="source digit (position)", ylabel="output step (greedy output)",
               title=f"{title}\n{s2s.to_text(src)} -> {s2s.to_text(out)}")
    fig.colorbar(shown, ax=axes, fraction=0.02, label="attention weight")
    fig.suptitle(f"{name} attention weights: reversal reads the source backwards "
                 "(anti-diagonal)")
    return plot.save(fig, run, "attention_heatmap.png")


def plot_lengths(run, by_length):
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.4), sharey=True)
    lo, hi = s2s.TRAIN_LENGTHS
    for ax, (what, label) in zip(axes, (("token_acc", "token accuracy"),
                                        ("exact_acc", "exact-sequence accuracy"))):
        ax.axvspan(lo - 0.5, hi + 0.5, color="0.92", label="training lengths")
        ax.axvspan(LONG_LENGTHS[0] - 0.5, LONG_LENGTHS[1] + 0.5, color="#fdf0d5",
                   label="longer: asserted")
        for kind, results in by_length.items():
            lengths = list(results)
            ax.plot(lengths, [results[n][what] for n in lengths], "o-",
                    label="no attention" if kind == "none" else f"{kind} attention")
        ax.set(xlabel="source length (digits)", ylabel=f"test {label} (greedy)", ylim=(0, 1.02),
               title=label)
    axes[0].legend(loc="lower left")
    fig.suptitle("attention keeps reading the source a little beyond the training lengths")
    return plot.save(fig, run, "length_generalisation.png")


def main(args) -> dict:
    run = cli.start(args, __file__)
    torch.set_num_threads(1)   # the same numbers whatever the core count
    torch.backends.cudnn.allow_tf32 = False   # cuDNN's GRU may use TF32 on a GPU by default:
                                              # ~1e-3 errors would swamp the exact checks
    q = QUICK if run.quick else {}
    models_to_train, evals, n_val, n_test = (q.get(k, globals()[k])
                                             for k in ("MODELS", "EVALS", "N_VAL", "N_TEST"))
    lo, hi = s2s.TRAIN_LENGTHS
    data.announce("random digit strings -> reversed", "generated",
                  detail=f"training lengths {lo}-{hi} (lesson 07's stream), test lengths "
                         f"{lo}-{FAR_LENGTHS[1]}: {LONG_LENGTHS[0]}-{FAR_LENGTHS[1]} never "
                         "seen in training")
    check_attention_pieces(run)

    val = s2s.random_strings(n_val, s2s.TRAIN_LENGTHS, s2s.splits_generator(run.seed, "val"))
    test = s2s.random_strings(n_test, (lo, FAR_LENGTHS[1]),
                              s2s.splits_generator(run.seed, "test"))
    probe = s2s.make_batch(s2s.random_strings(64, (lo, FAR_LENGTHS[1]),
                                              s2s.splits_generator(run.seed, "check")),
                           run.device)
    models, hists = {}, {}
    for kind in models_to_train:
        torch.manual_seed(run.seed)
        model = build(kind).to(run.device)
        print(f"{kind}: {sum(p.numel() for p in model.parameters())} parameters, "
              f"{run.steps} steps on the same batches")
        hists[kind] = s2s.train(model, run, run.steps, val, evals, label=kind)
        models[kind] = model
        if kind != "none":
            s2s.check_teacher_forcing_matches_greedy(model, probe, name=f"{kind} attention")
            check_trained_weights(f"{kind} attention", model, probe)

    # test, once per model: by length, and pooled over the training and the longer lengths
    by_length = {kind: s2s.accuracy_by_length(model, test, run.device)
                 for kind, model in models.items()}
    parts = {"in": s2s.TRAIN_LENGTHS, "long": LONG_LENGTHS, "far": FAR_LENGTHS}
    pooled = {(kind, part): s2s.evaluate(model, [s for s in test if a <= len(s) <= z], run.device)
              for kind, model in models.items() for part, (a, z) in parts.items()}
    print("test (measured once): token and exact-sequence accuracy at lengths " +
          " | ".join(f"{a}-{z}" for a, z in parts.values()))
    for kind in models:
        print(f"  {kind:>9}: " + " | ".join(f"{pooled[kind, p]['token_acc']:.3f} "
                                            f"{pooled[kind, p]['exact_acc']:.3f}" for p in parts))
    # exact-sequence accuracy: a string counts only if every digit and the stop are right.
    # (Token accuracy flatters the model without attention here: the first few digits it emits
    # are the last it read, still fresh in its final state, right at any length.)
    base = pooled["none", "long"]["exact_acc"]
    for kind in models:
        if kind != "none":
            check.greater(f"{kind} attention vs no attention: exact-sequence accuracy on longer "
                          f"strings ({LONG_LENGTHS[0]}-{LONG_LENGTHS[1]} digits), margin {MARGIN}",
                          pooled[kind, "long"]["exact_acc"], base + MARGIN)
    peaks = {}
    long_probe = s2s.make_batch([s for s in test if len(s) > hi][:200], run.device)
    in_probe = s2s.make_batch([s for s in test if len(s) <= hi][:200], run.device)
    for kind in models:
        if kind != "none":
            peaks[kind] = (mirrored_peak_rate(models[kind], in_probe),
                           mirrored_peak_rate(models[kind], long_probe))
            print(f"  {kind} attention peaks on the mirrored source digit: "
                  f"{peaks[kind][0]:.2f} of steps (training lengths), "
                  f"{peaks[kind][1]:.2f} (longer, {LONG_LENGTHS[0]}-{FAR_LENGTHS[1]})")
            check.greater(f"{kind} attention: fraction of steps (training lengths) whose peak "
                          "is the mirrored source position n-1-t", peaks[kind][0], 0.5)

    best = max((k for k in models if k != "none"), key=lambda k: hists[k]["best_val"]["exact_acc"])
    example = {n: next(s for s in test if len(s) == n) for n in (hi, LONG_LENGTHS[1],
                                                                 FAR_LENGTHS[1])}
    plot_heatmaps(run, best, models[best],
                  [(f"length {n}" + (" (longer than training)" if n > hi else ""),
                    s2s.make_batch([example[n]], run.device)) for n in example])
    plot_lengths(run, by_length)
    metrics = {"steps": hists["none"]["step"][-1], "chosen_for_heatmap": best}
    for kind in models:
        metrics[f"{kind}_val_exact_acc"] = hists[kind]["best_val"]["exact_acc"]
        for part in parts:
            for what in ("token_acc", "exact_acc"):
                metrics[f"{kind}_test_{part}_{what}"] = pooled[kind, part][what]
    for kind, (a, z) in peaks.items():
        metrics[f"{kind}_mirrored_peak_in"], metrics[f"{kind}_mirrored_peak_long"] = a, z
    attn = [k for k in models if k != "none"]
    better = [k for k in attn if pooled[k, "long"]["exact_acc"] > base]
    return cli.finish(run, metrics, answers={
        "long_exact": ("attention" if len(better) == len(attn) else "no attention"
                       if not better else "it depends", f"exact-sequence accuracy on "
                       f"{LONG_LENGTHS[0]}-{LONG_LENGTHS[1]} digits: no attention {base:.3f}, " +
                       ", ".join(f"{k} {pooled[k, 'long']['exact_acc']:.3f}" for k in attn) +
                       " (length_generalisation.png)"),
        "peak_position": ("mirrored" if all(peaks[k][0] > 0.5 for k in attn) else "other",
                          "share of steps whose attention peak is the source position n-1-t "
                          "(training lengths): " + ", ".join(f"{k} {peaks[k][0]:.2f}" for k in attn)
                          + " (attention_heatmap.png)")})


# Predict, then run: answer in your copy (`python -m dlcourse exercise 06.08`) before running it;
# `python -m dlcourse check 06.08` compares your answers with what the run measures.
# PREDICT long_exact (attention / no attention / it depends): on strings longer than any seen in training, which models reverse more strings exactly right?
# ANSWER long_exact:
# PREDICT peak_position (same / mirrored / other): reversing a string of length n, at output step t, where does the attention weight mostly sit: on source position t (same), on n-1-t (mirrored), or elsewhere?
# ANSWER peak_position:
# More to think about before running:
# 1. Without attention, which output digits of a 12-digit string come out right: the first
#    few, the last few, or none?
# 2. The attention models fit the training lengths almost perfectly. Where do they first go
#    wrong on a longer string: at the start, in the middle, or where to stop?
# 3. Dot attention has no parameters of its own. Why can it still learn where to look?

if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
