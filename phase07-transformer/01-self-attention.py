"""01 - Scaled dot-product attention with padding and causal masks (phase 07, week 10)

Goal: write attention(Q, K, V) = softmax(Q K^T / sqrt(d) + mask) V from scratch, with the
      two masks every Transformer uses (padding: ignore keys that are not real tokens;
      causal: a position may not look ahead), prove it equals PyTorch's
      F.scaled_dot_product_attention and a per-position loop that only ever touches the
      allowed keys, and measure why the scores are divided by sqrt(d).
Run:  python phase07-transformer/01-self-attention.py            (same sizes; about 1 s on CPU)
      python phase07-transformer/01-self-attention.py --quick    (seconds, offline, used by the tests)
Expect: "[check] ours vs F.scaled_dot_product_attention ..." max |diff| ~3e-7 (float32) with a
        boolean attn_mask (Tq != Tk, padding) and with is_causal=True; ours vs the brute-force loop
        ~4e-7; weights sum to 1 and are exactly 0 where masked; changing padded or future keys
        changes nothing. Unscaled scores of unit-variance vectors have variance ~d (~1 after
        scaling) and the softmax saturates (mean largest weight -> 1 as d grows).
        attention_masks.png: weights under padding, causal and both; scaling.png: saturation.
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked


def parse_args(argv=None):
    return cli.parser(__doc__).parse_args(argv)   # nothing trains: no --epochs / --steps


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import math

import torch
import torch.nn.functional as F

from dlcourse import check, data, plot
import matplotlib.pyplot as plt  # after dlcourse.plot, which picks the headless backend

# Sizes all different, so a transposed or mixed-up axis cannot go unnoticed.
B = 3                # batch
H = 2                # heads (here just an extra batch axis: 07.02 gives them meaning)
TQ = 5               # query positions
TK = 7               # key / value positions (cross-attention: TQ != TK)
D = 8                # query/key dimension d
DV = 6               # value dimension (need not equal d)
LENGTHS = [7, 3, 5]  # real key tokens per batch row: rows 1 and 2 lose real positions to padding
DIMS = [4, 16, 64, 256, 1024]   # d values for the sqrt(d) experiment
SCALE_KEYS = 32      # keys per query in that experiment
SCALE_ROWS = 2000    # query rows per d (the variance estimate's relative error ~ sqrt(2/rows))
# --quick runs the same sizes: everything here takes well under a second.


# ---------------------------------------------------------------- the lesson's code (07.02+ load it)
def scaled_dot_product_attention(q, k, v, mask=None):
    """softmax(q k^T / sqrt(d), masked) v.

    q (..., Tq, d), k (..., Tk, d), v (..., Tk, dv); mask: bool broadcastable to (..., Tq, Tk),
    True = may attend (F.scaled_dot_product_attention's boolean convention).
    Returns out (..., Tq, dv) and weights (..., Tq, Tk).
    A query row whose keys are all masked gets weights 0 and output 0 (not NaN): see main.
    """
    # EXERCISE attention: scores q k^T / sqrt(d); -inf where ~mask; softmax over the keys; zero the masked weights (no NaN rows); return weights @ v, weights
    d = q.shape[-1]
    scores = q @ k.transpose(-2, -1) / math.sqrt(d)                  # (..., Tq, Tk)
    if mask is not None:
        # -inf, not a large negative number: exp(-inf) = 0 exactly, so a masked key gets
        # weight exactly 0 whatever its score would have been.
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)                           # (..., Tq, Tk)
    if mask is not None:
        # A row with every key masked is softmax(-inf, ..., -inf) = 0/0 = NaN. Setting the
        # masked entries to 0 leaves every other row as it is (they are 0 already) and turns
        # such a row into zeros, so its output is 0 and no NaN spreads into later layers.
        weights = weights.masked_fill(~mask, 0.0)
    return weights @ v, weights                                       # (..., Tq, dv)
    # END EXERCISE


def causal_mask(T, device=None):
    """(T, T) bool, True on and below the diagonal: position i may attend to j <= i."""
    # EXERCISE causal_mask: a (T, T) bool matrix, True where key j <= query i (the diagonal included)
    return torch.ones(T, T, dtype=torch.bool, device=device).tril()
    # END EXERCISE


def padding_mask(lengths, T):
    """lengths (B,) -> (B, 1, 1, T) bool, True at the first lengths[b] (real) tokens.
    The two 1s broadcast over heads and query positions: padding removes keys, not queries."""
    # EXERCISE padding_mask: compare positions 0..T-1 with each row's length (True = real token), then add the head and query axes
    lengths = torch.as_tensor(lengths)
    real = torch.arange(T, device=lengths.device) < lengths[:, None]   # (B, T)
    return real[:, None, None, :]                                      # (B, 1, 1, T)
    # END EXERCISE


# ---------------------------------------------------------------- the reference nobody can get wrong
def brute_force_attention(q, k, v, mask):
    """One query at a time, touching ONLY the allowed keys (no masked_fill, no -inf):
    out_i = sum_{j allowed} softmax_j(q_i . k_j / sqrt(d)) v_j. Slow, plain, independent."""
    mask = mask.expand(*q.shape[:-2], q.shape[-2], k.shape[-2])
    out = torch.zeros(*q.shape[:-1], v.shape[-1], dtype=q.dtype, device=q.device)
    for idx in torch.cartesian_prod(*[torch.arange(n) for n in q.shape[:-1]]).tolist():
        *batch, i = idx
        allowed = mask[(*batch, i)].nonzero().flatten().tolist()
        if not allowed:
            continue                                                   # no key: output 0
        qi, ks, vs = q[(*batch, i)], k[tuple(batch)][allowed], v[tuple(batch)][allowed]
        s = [float(qi @ kj) / math.sqrt(q.shape[-1]) for kj in ks]
        top = max(s)
        e = [math.exp(x - top) for x in s]
        out[(*batch, i)] = sum(w / sum(e) * vj for w, vj in zip(e, vs))
    return out


# ---------------------------------------------------------------- checks
def check_against_torch(gen, dev):
    print("--- ours vs F.scaled_dot_product_attention and a per-position loop")
    q = torch.randn(B, H, TQ, D, generator=gen).to(dev)
    k = torch.randn(B, H, TK, D, generator=gen).to(dev)
    v = torch.randn(B, H, TK, DV, generator=gen).to(dev)
    pad = padding_mask(torch.tensor(LENGTHS), TK).to(dev)                  # (B, 1, 1, TK)
    check.equal("padding_mask counts the real tokens per row",
                pad.sum(dim=-1).flatten().tolist(), LENGTHS)

    # Cross-attention (TQ != TK) with padding: boolean attn_mask, True = attend.
    out, w = scaled_dot_product_attention(q, k, v, pad)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=pad)
    check.close("ours vs F.scaled_dot_product_attention, padding mask, Tq != Tk", out, ref, atol=1e-5)
    check.close("ours vs brute-force loop over allowed keys, padding mask",
                out, brute_force_attention(q, k, v, pad), atol=1e-5)

    # Self-attention (Tq = Tk): causal alone against is_causal=True, causal + padding by attn_mask.
    x_q = torch.randn(B, H, TK, D, generator=gen).to(dev)
    causal = causal_mask(TK, device=dev)                                    # (TK, TK)
    out_c, w_c = scaled_dot_product_attention(x_q, k, v, causal)
    check.close("ours (causal_mask) vs F.scaled_dot_product_attention(is_causal=True)",
                out_c, F.scaled_dot_product_attention(x_q, k, v, is_causal=True), atol=1e-5)
    both = causal & pad                                                     # (B, 1, TK, TK)
    out_b, w_b = scaled_dot_product_attention(x_q, k, v, both)
    check.close("ours vs F.scaled_dot_product_attention, causal & padding",
                out_b, F.scaled_dot_product_attention(x_q, k, v, attn_mask=both), atol=1e-5)
    # The loop knows nothing of tril or masked_fill: a causal mask shifted by one diagonal
    # (tril(1): sees the next token; tril(-1): loses its own) disagrees with it.
    check.close("ours vs brute-force loop over allowed keys, causal & padding",
                out_b, brute_force_attention(x_q, k, v, both), atol=1e-5)

    print("--- properties of the weights")
    for name, weights, m in (("padding", w, pad), ("causal & padding", w_b, both)):
        m = m.expand_as(weights)
        check.close(f"{name}: every row of weights sums to 1", weights.sum(-1),
                    torch.ones_like(weights.sum(-1)), atol=1e-6)
        check.equal(f"{name}: weights exactly 0 at every masked key",
                    int((weights[~m] != 0).sum()), 0)
        check.true(f"{name}: weights > 0 at every allowed key", bool((weights[m] > 0).all()),
                   f"min allowed weight {weights[m].min().item():.2e}")

    # Invariances that define the masks: keys/values the mask removes cannot matter.
    padded = ~pad[:, :, 0, :, None]                                         # (B, 1, TK, 1)
    k2 = k.masked_fill(padded, 100.0)                                       # padded keys, huge
    v2 = v.masked_fill(padded, -100.0)
    check.close("changing padded keys/values leaves every output unchanged",
                scaled_dot_product_attention(q, k2, v2, pad)[0], out, atol=0.0)
    t = 3
    k3, v3 = k.clone(), v.clone()
    k3[..., t + 1:, :] = torch.randn_like(k3[..., t + 1:, :])               # the future
    v3[..., t + 1:, :] = torch.randn_like(v3[..., t + 1:, :])
    new = scaled_dot_product_attention(x_q, k3, v3, causal)[0]
    check.close(f"causal: changing positions > {t} leaves outputs 0..{t} unchanged",
                new[..., :t + 1, :], out_c[..., :t + 1, :], atol=0.0)
    check.greater(f"causal: ... while output {t + 1} does change (max |diff|)",
                  (new[..., t + 1, :] - out_c[..., t + 1, :]).abs().max(), 1e-3)
    return w, w_b


def fully_masked_rows(gen, dev):
    print("--- a query row with no key it may attend to")
    q = torch.randn(1, 3, D, generator=gen).to(dev)
    k = torch.randn(1, 4, D, generator=gen).to(dev)
    v = torch.randn(1, 4, DV, generator=gen).to(dev)
    m = torch.ones(3, 4, dtype=torch.bool, device=dev)
    m[1] = False                                            # row 1 may see nothing
    naive = torch.softmax((q @ k.transpose(-2, -1)).masked_fill(~m, float("-inf")), dim=-1)
    print(f"    plain softmax over an all -inf row: {naive[0, 1].tolist()} (0/0)")
    out, w = scaled_dot_product_attention(q, k, v, m)
    check.true("fully masked row: ours returns finite values", bool(torch.isfinite(out).all()))
    check.equal("fully masked row: weights and output are exactly 0",
                [float(w[0, 1].abs().sum()), float(out[0, 1].abs().sum())], [0.0, 0.0])
    check.close("... and the other rows equal their unmasked softmax",
                out[0, [0, 2]], F.scaled_dot_product_attention(q, k, v)[0, [0, 2]], atol=1e-5)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=m)[0, 1]
    print(f"    F.scaled_dot_product_attention on that row ({dev.type}): {ref.tolist()} "
          "(recent PyTorch math kernels return 0 too; older versions and some GPU kernels NaN)")


def sqrt_d_experiment(gen):
    """q, k with unit-variance entries: q.k is a sum of d products of variance 1, so
    Var(q.k) = d. Without the 1/sqrt(d) the softmax sees scores of spread sqrt(d) and turns
    into an arg-max: nearly all weight on one key and gradients d softmax / d score ~ 0."""
    print("--- why divide by sqrt(d)")
    rows = []
    for d in DIMS:
        q = torch.randn(SCALE_ROWS, 1, d, generator=gen)
        k = torch.randn(SCALE_ROWS, SCALE_KEYS, d, generator=gen)
        raw = (q @ k.transpose(-2, -1))[:, 0]                                # (rows, keys)
        w_raw, w_scaled = raw.softmax(-1), (raw / math.sqrt(d)).softmax(-1)
        # size of the softmax's Jacobian diag(w) - w w^T: its largest entry per row, averaged
        jac = lambda w: (w * (1 - w)).max(-1).values.mean().item()
        rows.append(dict(d=d, var_raw=raw.var().item(), var_scaled=(raw / math.sqrt(d)).var().item(),
                         max_w_raw=w_raw.max(-1).values.mean().item(),
                         max_w_scaled=w_scaled.max(-1).values.mean().item(),
                         jac_raw=jac(w_raw), jac_scaled=jac(w_scaled)))
        r = rows[-1]
        print(f"    d={d:5d}: Var(q.k) {r['var_raw']:8.1f} -> scaled {r['var_scaled']:.3f};  "
              f"mean max weight {r['max_w_raw']:.3f} -> {r['max_w_scaled']:.3f};  "
              f"max w(1-w) {r['jac_raw']:.3f} -> {r['jac_scaled']:.3f}")
    # Relative standard error of a variance estimate from n = rows*keys products (kurtosis of
    # a product of d Gaussians is 3 + 6/d: at most 9 -> SE <= sqrt(8/n)); 6 SE leaves room.
    n = SCALE_ROWS * SCALE_KEYS
    tol = 6 * math.sqrt(8 / n)
    check.close("Var(q.k)/d ~ 1 for every d (measured)", [r["var_raw"] / r["d"] for r in rows],
                [1.0] * len(rows), atol=tol)
    check.greater(f"unscaled softmax saturates at d={DIMS[-1]}: mean max weight", rows[-1]["max_w_raw"], 0.9)
    check.less(f"scaled softmax does not: mean max weight at d={DIMS[-1]}", rows[-1]["max_w_scaled"], 0.5)
    return rows


# ---------------------------------------------------------------- figures
def figures(run, w_pad, w_both, rows):
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    panels = [(w_pad[1, 0], f"padding: length {LENGTHS[1]} of {TK}, Tq={TQ}"),
              (w_both[0, 0], f"causal, length {LENGTHS[0]}"),
              (w_both[2, 0], f"causal & padding, length {LENGTHS[2]}")]
    for ax, (w, title) in zip(axes, panels):
        w = w.detach().cpu()
        im = ax.imshow(w, cmap="viridis", vmin=0, vmax=1)
        zero = (w == 0).nonzero().tolist()
        for i, j in zero:
            ax.text(j, i, "x", ha="center", va="center", color="w", fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("key position j")
        ax.set_ylabel("query position i")
    fig.colorbar(im, ax=axes, shrink=0.8, label="weight (x: masked, exactly 0)")
    plot.save(fig, run, "attention_masks.png")

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    ds = [r["d"] for r in rows]
    axes[0].plot(ds, [r["max_w_raw"] for r in rows], "o-", label="q.k (no scale)")
    axes[0].plot(ds, [r["max_w_scaled"] for r in rows], "o-", label="q.k / sqrt(d)")
    axes[0].axhline(1 / SCALE_KEYS, color="gray", ls=":", label="uniform")
    axes[0].set(xscale="log", xlabel="d", ylabel="mean largest softmax weight",
                title=f"saturation over {SCALE_KEYS} keys")
    axes[0].legend(fontsize=8)
    axes[1].plot(ds, [r["jac_raw"] for r in rows], "o-", label="no scale")
    axes[1].plot(ds, [r["jac_scaled"] for r in rows], "o-", label="scaled")
    axes[1].set(xscale="log", xlabel="d", ylabel="mean of max_j w_j (1 - w_j)",
                title="softmax gradient size (0 = no learning signal)")
    axes[1].legend(fontsize=8)
    plot.save(fig, run, "scaling.png")


def main(args) -> dict:
    run = cli.start(args, __file__)
    gen = torch.Generator().manual_seed(run.seed)
    data.announce("random normal queries, keys and values", kind="generated")
    w_pad, w_both = check_against_torch(gen, run.device)
    fully_masked_rows(gen, run.device)
    rows = sqrt_d_experiment(gen)
    figures(run, w_pad, w_both, rows)
    # the answers to the questions at the end of the file, from this run's numbers
    growth = math.log(rows[-1]["var_raw"] / rows[0]["var_raw"]) / math.log(DIMS[-1] / DIMS[0])
    top = rows[-1]["max_w_raw"]
    answers = {
        "variance_growth": (min(((0, "constant"), (0.5, "like sqrt d"), (1, "like d")),
                                key=lambda c: abs(c[0] - growth))[1],
                            f"Var(q.k) {rows[0]['var_raw']:.1f} at d={DIMS[0]}, {rows[-1]['var_raw']:.1f} "
                            f"at d={DIMS[-1]}: log-log slope {growth:.2f} (printed table)"),
        "top_weight_unscaled": ("under 50%" if top < 0.5 else "50-90%" if top <= 0.9 else "over 90%",
                                f"mean largest weight at d={DIMS[-1]}: {top:.3f} unscaled, "
                                f"{rows[-1]['max_w_scaled']:.3f} scaled (scaling.png, left)"),
    }
    return cli.finish(run, {"var_qk_over_d_at_max_d": rows[-1]["var_raw"] / rows[-1]["d"],
                            "max_weight_unscaled": rows[-1]["max_w_raw"],
                            "max_weight_scaled": rows[-1]["max_w_scaled"]}, answers=answers)


# Predict, then run: answer in your copy (`python -m dlcourse exercise 07.01`) before running it;
# `python -m dlcourse check 07.01` compares your answers with what the run measures.
# PREDICT variance_growth (constant / like sqrt d / like d): q and k have independent unit-variance entries; without the 1/sqrt(d), how does the variance of the score q.k grow with the dimension d?
# ANSWER variance_growth:
# PREDICT top_weight_unscaled (under 50% / 50-90% / over 90%): with d = 1024, 32 keys and NO scaling, how much of the softmax weight does the largest key get on average?
# ANSWER top_weight_unscaled:


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
