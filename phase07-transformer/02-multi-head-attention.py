"""02 - Multi-head attention (phase 07, week 10)

Goal: build multi-head attention on lesson 01's scaled_dot_product_attention: project to
      queries, keys and values, split d_model into n_heads heads of head_dim each, attend in
      every head at once, merge, project out; load nn.MultiheadAttention's weights into it and
      get the same outputs and attention weights, for self- and cross-attention with masks.
Run:  python phase07-transformer/02-multi-head-attention.py            (same sizes; about 1 s on CPU)
      python phase07-transformer/02-multi-head-attention.py --quick    (seconds, offline, used by the tests)
Expect: "[check] ours vs nn.MultiheadAttention ..." max |diff| 0 on the CPU (<= 1e-5 checked;
        outputs, head-averaged and per-head weights) for self-attention with key_padding_mask + causal attn_mask and for cross-attention
        (Tq != Tk); per-head weights and a head-by-head loop agree; a head split done with reshape
        alone (no transpose) misses by ~0.1-1; heads.png shows what each head attends to.
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked


def parse_args(argv=None):
    return cli.parser(__doc__).parse_args(argv)   # nothing trains: no --epochs / --steps


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import torch
import torch.nn as nn
import torch.nn.functional as F

from dlcourse import check, data, lessons, plot
import matplotlib.pyplot as plt  # after dlcourse.plot, which picks the headless backend

attn = lessons.load("07.01")   # scaled_dot_product_attention, causal_mask, padding_mask

B = 3                # batch
D_MODEL = 12         # model width
N_HEADS = 3          # heads: head_dim = 4 != n_heads, so a swapped (heads, head_dim) shows
TQ = 5               # query positions (cross-attention)
TK = 7               # key / value positions; also the self-attention length
LENGTHS = [7, 4, 6]  # real tokens per batch row: padding removes real positions in rows 1, 2
BIAS_STD = 0.5       # nn.MultiheadAttention starts with zero biases: make them non-zero
DROPOUT = 0.3        # attention dropout for the train/eval check
TOL = 1e-5           # float32: both sides do the same sums in a different order
# --quick runs the same sizes: everything here takes well under a second.


class MultiHeadAttention(nn.Module):
    """MultiHead(Q, K, V) = Concat(head_1, ..., head_h) W_O,
    head_i = Attention(Q W_Q_i, K W_K_i, V W_V_i), each W_*_i a d_model x head_dim slice.
    One d_model x d_model Linear per role computes all heads' projections at once; the split
    into heads is only a reshape of its output. Batch-first: (B, T, d_model)."""

    def __init__(self, d_model, n_heads, dropout=0.0, bias=True):
        super().__init__()
        assert d_model % n_heads == 0, f"d_model {d_model} not divisible by n_heads {n_heads}"
        self.n_heads, self.head_dim, self.dropout = n_heads, d_model // n_heads, dropout
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.k_proj = nn.Linear(d_model, d_model, bias=bias)
        self.v_proj = nn.Linear(d_model, d_model, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)
        self.weights = None   # (B, n_heads, Tq, Tk) of the last forward, before dropout

    def _split(self, x):
        """(B, T, d_model) -> (B, n_heads, T, head_dim). Features h*head_dim..(h+1)*head_dim
        belong to head h; the transpose moves heads next to batch so each head's (T, head_dim)
        matrix is contiguous in the last two axes, where attention works."""
        # EXERCISE split_heads: view the features as (B, T, n_heads, head_dim), then swap the T and head axes
        B, T, _ = x.shape
        return x.view(B, T, self.n_heads, self.head_dim).transpose(1, 2)   # (B, h, T, hd)
        # END EXERCISE

    def forward(self, query, key, value, mask=None):
        """query (B, Tq, d_model), key/value (B, Tk, d_model); mask bool broadcastable to
        (B, n_heads, Tq, Tk), True = may attend. Returns (B, Tq, d_model)."""
        # EXERCISE mha_forward: project and _split q, k, v; attn.scaled_dot_product_attention (keep its weights, detached, in self.weights); in training dropout the weights and redo @ v; merge heads to (B, Tq, d_model); out_proj
        B, Tq, d_model = query.shape
        q = self._split(self.q_proj(query))                                # (B, h, Tq, hd)
        k = self._split(self.k_proj(key))                                  # (B, h, Tk, hd)
        v = self._split(self.v_proj(value))                                # (B, h, Tk, hd)
        out, weights = attn.scaled_dot_product_attention(q, k, v, mask)    # scale 1/sqrt(hd)
        self.weights = weights.detach()
        if self.training and self.dropout > 0:
            # dropout on the weights (as nn.MultiheadAttention does): a random subset of the
            # keys is hidden from each query at each step; kept weights are scaled by 1/(1-p)
            out = F.dropout(weights, self.dropout) @ v                     # (B, h, Tq, hd)
        out = out.transpose(1, 2).reshape(B, Tq, d_model)                  # merge: (B, Tq, d_model)
        return self.out_proj(out)
        # END EXERCISE


def load_from_torch(mine, ref):
    """Copy nn.MultiheadAttention's weights into MultiHeadAttention. The reference packs the
    three input projections in one (3 d_model, d_model) in_proj_weight, rows in the order
    q, k, v (and in_proj_bias likewise); out_proj is an ordinary Linear."""
    assert ref._qkv_same_embed_dim, "only the kdim = vdim = embed_dim layout is handled"
    assert ref.batch_first, "MultiHeadAttention is batch-first: build the reference with batch_first=True"
    with torch.no_grad():
        w_q, w_k, w_v = ref.in_proj_weight.chunk(3, dim=0)                # each (d_model, d_model)
        for lin, w in ((mine.q_proj, w_q), (mine.k_proj, w_k), (mine.v_proj, w_v)):
            lin.weight.copy_(w)
        if ref.in_proj_bias is not None:
            for lin, b in zip((mine.q_proj, mine.k_proj, mine.v_proj), ref.in_proj_bias.chunk(3)):
                lin.bias.copy_(b)
        mine.out_proj.weight.copy_(ref.out_proj.weight)
        if ref.out_proj.bias is not None:
            mine.out_proj.bias.copy_(ref.out_proj.bias)
    return mine


# ---------------------------------------------------------------- references and checks
def make_pair(gen, dev, bias=True, dropout=0.0):
    """A reference nn.MultiheadAttention with random non-zero biases, and ours loaded from it."""
    ref = nn.MultiheadAttention(D_MODEL, N_HEADS, dropout=dropout, bias=bias, batch_first=True)
    with torch.no_grad():
        if bias:
            ref.in_proj_bias.copy_(BIAS_STD * torch.randn(3 * D_MODEL, generator=gen))
            ref.out_proj.bias.copy_(BIAS_STD * torch.randn(D_MODEL, generator=gen))
    ref = ref.to(dev).eval()
    mine = load_from_torch(MultiHeadAttention(D_MODEL, N_HEADS, dropout, bias).to(dev), ref).eval()
    return mine, ref


def heads_by_loop(mine, query, key, value, mask):
    """The definition, head by head: slice each projection's rows for head i, attend with
    lesson 01's function, concatenate along features, project out. No view/transpose tricks."""
    hd, outs = mine.head_dim, []
    for i in range(mine.n_heads):
        rows = slice(i * hd, (i + 1) * hd)
        proj = lambda lin, x: F.linear(x, lin.weight[rows],
                                       None if lin.bias is None else lin.bias[rows])
        m = None if mask is None else mask[:, 0]            # the mask is the same for every head
        out_i, _ = attn.scaled_dot_product_attention(proj(mine.q_proj, query), proj(mine.k_proj, key),
                                                     proj(mine.v_proj, value), m)   # (B, Tq, hd)
        outs.append(out_i)
    return mine.out_proj(torch.cat(outs, dim=-1))           # (B, Tq, d_model)


def compare(name, mine, ref, query, key, value, lengths, causal):
    """Run ours and nn.MultiheadAttention under the same masks, in each one's convention:
    ours  mask True = MAY attend, one boolean (B, 1, Tq, Tk) = padding & causal;
    torch key_padding_mask (B, Tk) True = IGNORE this key, attn_mask (Tq, Tk) True = NOT allowed."""
    Tq, Tk = query.shape[1], key.shape[1]
    mask = attn.padding_mask(lengths, Tk).to(query.device)                 # (B, 1, 1, Tk)
    ref_kw = dict(key_padding_mask=~mask[:, 0, 0])
    if causal:
        c = attn.causal_mask(Tq, device=query.device)                      # (T, T)
        mask = mask & c
        ref_kw["attn_mask"] = ~c
    out = mine(query, key, value, mask)
    ref_out, ref_w = ref(query, key, value, need_weights=True, average_attn_weights=True, **ref_kw)
    _, ref_heads = ref(query, key, value, need_weights=True, average_attn_weights=False, **ref_kw)
    err = check.close(f"{name}: ours vs nn.MultiheadAttention, outputs", out, ref_out, atol=TOL)
    check.close(f"{name}: our weights averaged over heads vs need_weights=True, average_attn_weights=True",
                mine.weights.mean(dim=1), ref_w, atol=TOL)
    check.close(f"{name}: our per-head weights vs average_attn_weights=False",
                mine.weights, ref_heads, atol=TOL)
    check.close(f"{name}: ours vs the head-by-head loop", out,
                heads_by_loop(mine, query, key, value, mask), atol=TOL)
    return out, mask, err


class ReshapeOnlySplit(MultiHeadAttention):
    """The classic mistake: view (B, T, d) straight as (B, h, T, hd). Shapes fit, nothing
    crashes, but 'head 0, position 1' now holds features of position 0 (or of other heads)."""

    def _split(self, x):
        B, T, _ = x.shape
        return x.reshape(B, self.n_heads, T, self.head_dim)                # wrong: no transpose


def main(args) -> dict:
    run = cli.start(args, __file__)
    dev = run.device
    gen = torch.Generator().manual_seed(run.seed)
    data.announce("random normal token vectors", kind="generated")
    x = torch.randn(B, TK, D_MODEL, generator=gen).to(dev)                 # self-attention input
    q_in = torch.randn(B, TQ, D_MODEL, generator=gen).to(dev)              # decoder-side queries
    memory = torch.randn(B, TK, D_MODEL, generator=gen).to(dev)            # encoder-side keys
    values = torch.randn(B, TK, D_MODEL, generator=gen).to(dev)            # values != keys
    lengths = torch.tensor(LENGTHS)
    mine, ref = make_pair(gen, dev)
    print(f"--- d_model {D_MODEL}, {N_HEADS} heads of head_dim {mine.head_dim}")

    with torch.no_grad():
        _, self_mask, err_self = compare("self-attention, padding + causal", mine, ref, x, x, x,
                                         lengths, causal=True)
        self_weights = mine.weights.cpu()
        _, _, err_cross = compare(f"cross-attention Tq={TQ} Tk={TK}, padding", mine, ref,
                                  q_in, memory, values, lengths, causal=False)
        mine_nb, ref_nb = make_pair(gen, dev, bias=False)
        compare("bias=False, cross-attention", mine_nb, ref_nb, q_in, memory, values, lengths, causal=False)
        # nn.MultiheadAttention's fast path (need_weights=False, eval) is a separate kernel
        out = mine(q_in, memory, values, attn.padding_mask(lengths, TK).to(dev))
        check.close("ours vs nn.MultiheadAttention(need_weights=False) fast path", out,
                    ref(q_in, memory, values, key_padding_mask=~attn.padding_mask(lengths, TK)[:, 0, 0].to(dev),
                        need_weights=False)[0], atol=TOL)

        print("--- the check that catches a wrong head split")
        wrong = load_from_torch(ReshapeOnlySplit(D_MODEL, N_HEADS).to(dev), ref).eval()
        miss = (wrong(x, x, x, self_mask) - ref(x, x, x, key_padding_mask=~self_mask[:, 0, 0, :],
                                                   attn_mask=~attn.causal_mask(TK, device=dev),
                                                   need_weights=False)[0]).abs().max()
        check.greater(f"reshape without transpose misses nn.MultiheadAttention by far more than {TOL}",
                      miss, 100 * TOL)

    print("--- dropout acts in training only")
    drop, drop_ref = make_pair(gen, dev, dropout=DROPOUT)
    mask = attn.padding_mask(lengths, TK).to(dev)
    with torch.no_grad():
        eval_out = drop(q_in, memory, values, mask)
        eval_err = check.close("dropout model in eval() equals the dropout-free reference", eval_out,
                    drop_ref(q_in, memory, values, key_padding_mask=~mask[:, 0, 0], need_weights=False)[0],
                    atol=TOL)
        drop.train()
        train_out = drop(q_in, memory, values, mask)
    check.greater("in train() dropout changes the output (max |diff|)", (train_out - eval_out).abs().max(), 1e-3)

    fig, axes = plt.subplots(1, N_HEADS + 1, figsize=(3.2 * (N_HEADS + 1), 3.2))
    b = 1                                                                  # a row with padding
    for h, ax in enumerate(axes):
        w = self_weights[b, h] if h < N_HEADS else self_weights[b].mean(0)
        ax.imshow(w, cmap="viridis", vmin=0, vmax=1)
        ax.set_title(f"head {h}" if h < N_HEADS else "average (need_weights=True)", fontsize=9)
        ax.set_xlabel("key")
        ax.set_ylabel("query")
    fig.suptitle(f"self-attention weights, causal + padding (length {LENGTHS[b]} of {TK})", fontsize=10)
    plot.save(fig, run, "heads.png")
    # Question to think about: if every head had the same W_Q, W_K, W_V slice, would multi-head
    # attention compute anything a single head could not?
    answers = {
        "reshape_split": ("yes" if miss <= TOL else "no",
                          f"reshape without transpose misses nn.MultiheadAttention by {float(miss):.3g} "
                          f"(tolerance {TOL})"),
        "dropout_eval": ("yes" if eval_err <= TOL else "no",
                         f"dropout {DROPOUT} model in eval() vs the reference: max |diff| {eval_err:.3g}; "
                         f"in train() it moves by {float((train_out - eval_out).abs().max()):.3g}"),
    }
    return cli.finish(run, {"max_diff_self": err_self, "max_diff_cross": err_cross,
                            "wrong_split_miss": float(miss)}, answers=answers)


# Predict, then run: answer in your copy (`python -m dlcourse exercise 07.02`) before running it;
# `python -m dlcourse check 07.02` compares your answers with what the run measures.
# PREDICT reshape_split (yes / no): if _split were x.reshape(B, n_heads, T, head_dim), with no transpose (the shapes fit, nothing crashes), would the outputs still match nn.MultiheadAttention within 1e-5?
# ANSWER reshape_split:
# PREDICT dropout_eval (yes / no): a model built with attention dropout 0.3 and switched to eval(): does it give exactly the dropout-free reference's outputs (within 1e-5)?
# ANSWER dropout_eval:


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
