"""12 - Target attention (DIN) and attention pooling; next-item prediction (phase 07, week 12)

Goal: pool a user's variable-length behaviour sequence three ways - masked mean, DIN's target
      attention (Zhou et al. 2018: an MLP over [behaviour, target, behaviour - target,
      behaviour * target] weights each past item for THIS candidate, and the weights are NOT
      softmax-normalised) and the same attention softmax-normalised - and see on generated click
      data why the paper drops the softmax; then predict the next item with a small causal
      Transformer (the Transformer4Rec / SASRec recipe) against a popularity baseline.
Run:  python phase07-transformer/12-attention-pooling-din.py            (about a minute on a quiet 2-core CPU)
      python phase07-transformer/12-attention-pooling-din.py --quick    (seconds, offline, used by the tests)
Expect: padding changes nothing (max |diff| 0); batched attention pooling equals a per-user loop
        (~1e-7); our AUC equals sklearn's roc_auc_score (~1e-16, ties included); test AUC of
        DIN above both poolings (seed 0: quick 0.885 vs softmax 0.831 and mean 0.826; full 0.912
        vs 0.865 and 0.864; softmax and mean are close, and on seed 2 mean is ahead); Recall@10
        of the causal Transformer far above popularity (seed 0: quick 0.805 vs 0.372, full 0.821
        vs 0.378).
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked

EPOCHS = 12          # full run: epochs for each click model and for the Transformer
QUICK_EPOCHS = 6     # --quick


def parse_args(argv=None):
    return cli.parser(__doc__, epochs=(EPOCHS, QUICK_EPOCHS)).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

from dlcourse import check, data, plot
import matplotlib.pyplot as plt  # after dlcourse.plot, which picks the headless backend

# ---- part 1: click prediction from a behaviour sequence --------------------------------------
N_ITEMS = 100        # item ids 1..N_ITEMS; id 0 is padding
N_CAT = 10           # item category = (id - 1) % N_CAT
LEN_RANGE = (4, 30)  # behaviour sequence length, uniform in [low, high]
FAV_P = 0.5          # share of a user's past items drawn from their two favourite categories
CAND_FAV_P = 0.5     # share of candidates drawn from a favourite category
SLOPE, THRESH = 1.0, 3.0  # P(click) = sigmoid(SLOPE * (n_same - THRESH)), n_same = past items
                          # of the candidate's category: a COUNT, which a mean cannot see
N_USERS = 20000      # generated users (train 70% / val 15% / test 15%), full run
D = 16               # item embedding size
HIDDEN = 32          # hidden units of the attention unit and of the prediction head
LR = 1e-2            # Adam learning rate
BATCH = 256          # users per step
MIN_GAIN = 0.03      # DIN's test AUC must beat mean pooling's by at least this much

# ---- part 2: next-item prediction --------------------------------------------------------------
N_NEXT_ITEMS = 100   # catalogue of the next-item task (ids 1..N; 0 is padding)
NEXT_LEN = (6, 20)   # session length, uniform in [low, high]
FOLLOW_P = 0.6       # next item = succ[item LAG steps back] with this probability, else a
LAG = 1              # popular item (Zipf); LAG 1: the last item decides it (LAG 2 learns too slowly for --quick)
ZIPF_A = 1.0         # popularity exponent of the background items
N_SESSIONS = 12000   # sessions (train 80% / val 10% / test 10%), full run
T_D, T_HEADS, T_FF = 32, 2, 64   # Transformer width, heads, feed-forward width
T_LR = 1e-2          # Adam learning rate of the Transformer
K = 10               # Recall@K and NDCG@K

# --quick overrides, in one place
QUICK = dict(N_USERS=6000, N_SESSIONS=4000)


# ---- data ---------------------------------------------------------------------------------------
def category(items):
    return (items - 1) % N_CAT


def make_clicks(n, gen):
    """n users: padded behaviour sequences (n, T) with 0 as padding, lengths (n,),
    candidate items (n,), click labels (n,) and the planted count n_same (n,)."""
    lo, hi = LEN_RANGE
    lengths = torch.randint(lo, hi + 1, (n,), generator=gen)
    favs = torch.stack([torch.randperm(N_CAT, generator=gen)[:2] for _ in range(n)])  # (n, 2)
    per_cat = N_ITEMS // N_CAT

    def draw(shape, fav_p):
        """Items of shape (n, m): from a favourite category with probability fav_p."""
        cat = torch.randint(0, N_CAT, shape, generator=gen)
        use_fav = torch.rand(shape, generator=gen) < fav_p
        which = favs.gather(1, torch.randint(0, 2, shape, generator=gen))
        cat = torch.where(use_fav, which, cat)
        return 1 + cat + N_CAT * torch.randint(0, per_cat, shape, generator=gen)

    seq = draw((n, hi), FAV_P)
    real = torch.arange(hi).unsqueeze(0) < lengths.unsqueeze(1)             # (n, T) True = real
    seq = seq * real                                                         # padding id 0
    cand = draw((n, 1), CAND_FAV_P).squeeze(1)                              # (n,)
    n_same = ((category(seq) == category(cand).unsqueeze(1)) & real).sum(1)
    p = torch.sigmoid(SLOPE * (n_same.float() - THRESH))
    y = (torch.rand(n, generator=gen) < p).float()
    return seq, lengths, cand, y, n_same


# ---- models -------------------------------------------------------------------------------------
class ClickModel(nn.Module):
    """Embed behaviours and candidate, pool the behaviours, predict the click logit.

    pooling: 'mean'    masked mean over real items (the target plays no part in pooling)
             'din'     sum_i a(e_i, t) e_i with a = MLP([e_i, t, e_i - t, e_i * t]), unnormalised
             'softmax' the same scores, softmax-normalised over the real items
    Without the softmax the pooled vector's size grows with how many relevant items the user
    has (DIN section 4.3: 'normalization with softmax on the output ... is abandoned, to reserve
    the intensity of user interests'); a softmax makes the weights sum to 1, like the mean."""

    def __init__(self, pooling):
        super().__init__()
        assert pooling in ("mean", "din", "softmax"), pooling
        self.pooling = pooling
        # no padding_idx: the pad row is an ordinary random (non-zero) vector, so only the
        # mask keeps padding out of the pooled vector
        self.item_emb = nn.Embedding(N_ITEMS + 1, D)
        self.cat_emb = nn.Embedding(N_CAT, D)   # DIN embeds item id AND category (goods, cate)
        self.att = nn.Sequential(nn.Linear(4 * D, HIDDEN), nn.PReLU(), nn.Linear(HIDDEN, 1))
        self.head = nn.Sequential(nn.Linear(3 * D, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 1))
        self.weights = None      # the last pooling weights (B, T), for inspection

    def emb(self, items):
        """items (...) -> (..., D): item embedding + category embedding. Padding (id 0) gets
        category (0 - 1) % N_CAT, a real category: unmasked, it would count as such items."""
        return self.item_emb(items) + self.cat_emb(category(items))

    def scores(self, beh, tgt):
        """The activation unit: beh (B, T, D), tgt (B, D) -> (B, T) one score per behaviour."""
        t = tgt.unsqueeze(1).expand_as(beh)                                  # (B, T, D)
        x = torch.cat([beh, t, beh - t, beh * t], dim=-1)                    # (B, T, 4D)
        return self.att(x).squeeze(-1)                                       # (B, T)

    def pool(self, beh, tgt, mask):
        """beh (B, T, D), tgt (B, D), mask (B, T) True at real items -> (B, D)."""
        # EXERCISE pool: weights w (B, T): mean = mask / count; din = scores(beh, tgt) zeroed at padding (no softmax); softmax = scores softmaxed over the real items; keep w in self.weights; return sum_t w_t beh_t
        if self.pooling == "mean":
            m = mask.unsqueeze(-1).to(beh.dtype)                             # (B, T, 1)
            w = (m / m.sum(1, keepdim=True)).squeeze(-1)                     # (B, T), rows sum to 1
        elif self.pooling == "din":
            w = self.scores(beh, tgt) * mask                                 # (B, T), pads -> 0
        else:
            s = self.scores(beh, tgt).masked_fill(~mask, float("-inf"))     # (B, T)
            w = s.softmax(dim=1)                                             # over the sequence
        self.weights = w
        return (w.unsqueeze(-1) * beh).sum(1)                                # (B, D)
        # END EXERCISE

    def forward(self, seq, cand):
        """seq (B, T) item ids with 0 = padding, cand (B,) -> click logits (B,)."""
        mask = seq != 0                                                      # (B, T)
        beh, tgt = self.emb(seq), self.emb(cand)                             # (B, T, D), (B, D)
        pooled = self.pool(beh, tgt, mask)                                   # (B, D)
        return self.head(torch.cat([pooled, tgt, pooled * tgt], -1)).squeeze(-1)  # (B,)


def pool_loop(model, seq, cand):
    """Reference: one user and one behaviour at a time, real items only, no mask at all."""
    out = []
    for b in range(seq.shape[0]):
        items = seq[b][seq[b] != 0]                                          # (L_b,)
        e, t = model.emb(items), model.emb(cand[b])                          # (L_b, D), (D,)
        if model.pooling == "mean":
            out.append(e.mean(0))
            continue
        s = torch.stack([model.att(torch.cat([e[i], t, e[i] - t, e[i] * t])).squeeze()
                         for i in range(len(items))])                        # (L_b,)
        w = s if model.pooling == "din" else torch.exp(s - s.max()) / torch.exp(s - s.max()).sum()
        out.append((w.unsqueeze(1) * e).sum(0))
    return torch.stack(out)                                                  # (B, D)


# ---- metrics ------------------------------------------------------------------------------------
def auc(scores, labels):
    """ROC AUC by the rank-sum (Mann-Whitney U): the probability that a random positive scores
    above a random negative, ties counting one half. Tied scores share their average rank."""
    # EXERCISE auc: rank all scores (1-based; tied scores get the mean of their ranks); AUC = (sum of the positives' ranks - n_pos (n_pos + 1) / 2) / (n_pos n_neg)
    scores, labels = np.asarray(scores, dtype=float), np.asarray(labels).astype(bool)
    uniq, inv, counts = np.unique(scores, return_inverse=True, return_counts=True)
    last = np.cumsum(counts)                  # 1-based rank of each distinct value's last copy
    avg_rank = last - (counts - 1) / 2        # mean of ranks last-counts+1 .. last
    ranks = avg_rank[inv]
    n_pos, n_neg = labels.sum(), (~labels).sum()
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
    # END EXERCISE


def auc_se(a, n_pos, n_neg):
    """Hanley & McNeil (1982) standard error of an AUC estimate."""
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    return math.sqrt((a * (1 - a) + (n_pos - 1) * (q1 - a * a) + (n_neg - 1) * (q2 - a * a))
                     / (n_pos * n_neg))


def rank_of_target(logits, target):
    """logits (N, V), target (N,) -> 0-based rank: how many items score strictly higher."""
    t = logits.gather(1, target.unsqueeze(1))                                # (N, 1)
    return (logits > t).sum(1)                                               # (N,)


def recall_ndcg(rank, k):
    """One relevant item per user: Recall@k = P(rank < k); NDCG@k = E[1/log2(rank + 2)] over
    hits (the ideal DCG is 1, the relevant item at rank 0)."""
    # EXERCISE recall_ndcg: a hit is a 0-based rank below k; Recall = mean hit; NDCG = mean of hit / log2(rank + 2); return two floats
    hit = (rank < k).double()
    return hit.mean().item(), (hit / torch.log2(rank.double() + 2)).mean().item()
    # END EXERCISE


# ---- part 1: train and compare ------------------------------------------------------------------
def split(n, fractions, gen):
    idx = torch.randperm(n, generator=gen)
    cut = [int(n * f) for f in np.cumsum(fractions)]
    return idx[:cut[0]], idx[cut[0]:cut[1]], idx[cut[1]:]


@torch.no_grad()
def predict(model, seq, cand, device):
    model.eval()
    return torch.cat([model(seq[i:i + 4096].to(device), cand[i:i + 4096].to(device)).cpu()
                      for i in range(0, len(seq), 4096)])


def train_click(run, pooling, tr, va):
    torch.manual_seed(run.seed)
    model = ClickModel(pooling).to(run.device)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    gen = torch.Generator().manual_seed(run.seed + 1)
    seq, cand, y = tr
    best, best_state = -1.0, None
    for _ in range(run.epochs):
        model.train()
        for idx in torch.randperm(len(y), generator=gen).split(BATCH):
            logit = model(seq[idx].to(run.device), cand[idx].to(run.device))
            loss = F.binary_cross_entropy_with_logits(logit, y[idx].to(run.device))
            opt.zero_grad()
            loss.backward()
            opt.step()
        val_auc = auc(predict(model, va[0], va[1], run.device), va[2])
        if val_auc > best:                    # select the epoch on validation
            best, best_state = val_auc, {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    return model, best


def part_clicks(run, n_users):
    gen = torch.Generator().manual_seed(run.seed)
    seq, lengths, cand, y, n_same = make_clicks(n_users, gen)
    data.announce("behaviour sequences", "generated",
                  detail=f"{n_users} users, {N_ITEMS} items in {N_CAT} categories, lengths "
                         f"{LEN_RANGE[0]}-{LEN_RANGE[1]} padded with id 0; click rate {y.mean():.2f}, "
                         "P(click) rises with the COUNT of past items of the candidate's category")
    tr, va, te = split(n_users, (0.7, 0.15), gen)

    # -- checks on untrained models: masking and the loop reference --
    torch.manual_seed(run.seed)
    few = torch.arange(7)                      # 7 users: not D, not HIDDEN, not T
    fseq, fcand = seq[few].to(run.device), cand[few].to(run.device)
    junk = torch.randint(1, N_ITEMS + 1, fseq.shape, generator=gen).to(run.device)
    fseq_junk = torch.where(fseq == 0, junk, fseq)  # padding replaced by real-looking items ...
    fseq_junk_pad = fseq_junk.masked_fill(fseq == 0, 0)
    for pooling in ("mean", "din", "softmax"):
        m = ClickModel(pooling).to(run.device).eval()
        with torch.no_grad():
            check.true(f"{pooling}: pad embedding is non-zero (only the mask can hide padding)",
                       m.emb(torch.zeros((), dtype=torch.long, device=run.device)).abs().min() > 0, f"min |pad| {m.emb(torch.zeros((), dtype=torch.long, device=run.device)).abs().min():.3g}")
            mask = fseq != 0
            # ... and fed to pool() with the ORIGINAL mask: the result must not move
            a = m.pool(m.emb(fseq), m.emb(fcand), mask)
            b = m.pool(m.emb(fseq_junk), m.emb(fcand), mask)
            check.close(f"{pooling}: pooling ignores what sits under the padding", a, b, atol=1e-6)
            check.close(f"{pooling}: batched pooling vs per-user loop over real items only", a,
                        pool_loop(m, fseq_junk_pad, fcand), atol=1e-5)
            if pooling != "din":
                check.close(f"{pooling}: weights sum to 1 per user", m.weights.sum(1),
                            torch.ones(len(few)), atol=1e-5)

    # -- AUC against sklearn, with and without ties --
    r = np.random.default_rng(run.seed)
    s_tied = r.integers(0, 5, 301) / 4.0       # 5 distinct values: many ties
    l_tied = (r.random(301) < 0.3 + 0.1 * s_tied).astype(int)
    check.close("our AUC vs sklearn roc_auc_score, heavily tied scores",
                auc(s_tied, l_tied), roc_auc_score(l_tied, s_tied), atol=1e-12)

    # -- training --
    results, models = {}, {}
    test_y = y[te].numpy()
    n_pos, n_neg = int(test_y.sum()), int(len(test_y) - test_y.sum())
    for pooling in ("mean", "softmax", "din"):
        model, val_auc = train_click(run, pooling, (seq[tr], cand[tr], y[tr]),
                                     (seq[va], cand[va], y[va]))
        p = predict(model, seq[te], cand[te], run.device).numpy()
        a = auc(p, test_y)
        check.close(f"{pooling}: our test AUC vs sklearn roc_auc_score", a,
                    roc_auc_score(test_y, p), atol=1e-12)
        results[pooling], models[pooling] = a, model
        print(f"  {pooling:8s} val AUC {val_auc:.4f}  test AUC {a:.4f} "
              f"(+- {auc_se(a, n_pos, n_neg):.4f} s.e.)")
    oracle = auc(torch.sigmoid(SLOPE * (n_same[te].float() - THRESH)).numpy(), test_y)
    print(f"  oracle (the true P(click)) test AUC {oracle:.4f}")
    check.greater(f"test AUC: DIN target attention beats mean pooling by > {MIN_GAIN}",
                  results["din"] - results["mean"], MIN_GAIN)

    # what DIN's unnormalised weights carry: their sum tracks the count of relevant items
    with torch.no_grad():
        d = models["din"].eval()
        d(seq[te].to(run.device), cand[te].to(run.device))
        wsum = d.weights.sum(1).cpu()
    corr = np.corrcoef(wsum.numpy(), n_same[te].numpy())[0, 1]
    print(f"  DIN: corr(sum of attention weights, n_same) = {corr:.3f}; "
          "a softmax's weights always sum to 1 and cannot carry the count")
    return results, oracle, (n_same[te].numpy(), wsum.numpy())


# ---- part 2: next-item prediction ---------------------------------------------------------------
def make_sessions(n, gen):
    """Sessions (n, T) padded with 0 and lengths (n,). Item t = succ[item t - LAG] with
    probability FOLLOW_P, else a Zipf-popular item."""
    lo, hi = NEXT_LEN
    succ = 1 + torch.randperm(N_NEXT_ITEMS, generator=gen)                   # succ[i - 1]
    pop = 1.0 / torch.arange(1, N_NEXT_ITEMS + 1).double() ** ZIPF_A
    popular = 1 + torch.randperm(N_NEXT_ITEMS, generator=gen)                # popularity order
    def background(m):
        return popular[torch.multinomial(pop, m, replacement=True, generator=gen)]
    seq = torch.zeros(n, hi, dtype=torch.long)
    seq[:, :LAG] = background(LAG * n).view(n, LAG)
    for t in range(LAG, hi):
        follow = torch.rand(n, generator=gen) < FOLLOW_P
        seq[:, t] = torch.where(follow, succ[seq[:, t - LAG] - 1], background(n))
    lengths = torch.randint(lo, hi + 1, (n,), generator=gen)
    seq = seq * (torch.arange(hi).unsqueeze(0) < lengths.unsqueeze(1))
    return seq, lengths


class NextItem(nn.Module):
    """SASRec / Transformer4Rec-style: item + learned position embeddings, a causal Transformer
    encoder, logits over the catalogue by the tied item embedding."""

    def __init__(self, max_len):
        super().__init__()
        self.item = nn.Embedding(N_NEXT_ITEMS + 1, T_D)
        self.pos = nn.Embedding(max_len, T_D)
        layer = nn.TransformerEncoderLayer(T_D, T_HEADS, T_FF, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        # small embeddings (GPT-2's 0.02): the output layer is tied to them, and N(0, 1) rows
        # give initial logits of size ~sqrt(T_D), a loss far above log(V) at the start
        nn.init.normal_(self.item.weight, std=0.02)
        nn.init.normal_(self.pos.weight, std=0.02)

    def forward(self, seq):
        """seq (B, T) ids, 0 = padding (right) -> logits (B, T, N_NEXT_ITEMS + 1)."""
        B, T = seq.shape
        h = self.item(seq) + self.pos(torch.arange(T, device=seq.device))   # (B, T, D)
        # nn.Transformer's boolean masks say True = may NOT attend (the opposite of
        # F.scaled_dot_product_attention's): above the diagonal is the future
        future = torch.triu(torch.ones(T, T, dtype=torch.bool, device=seq.device), diagonal=1)
        h = self.encoder(h, mask=future, src_key_padding_mask=seq == 0)      # (B, T, D)
        logits = h @ self.item.weight.T                                      # (B, T, V)
        return logits.masked_fill(torch.arange(logits.shape[-1], device=seq.device) == 0,
                                  float("-inf"))                             # never predict padding


@torch.no_grad()
def last_logits(model, seq, lengths, device):
    """Logits for the LAST item of each session from the items before it: (N, V)."""
    model.eval()
    inp = seq.masked_fill(torch.arange(seq.shape[1]) >= (lengths - 1).unsqueeze(1), 0)
    out = model(inp.to(device)).cpu()                                        # (N, T, V)
    return out[torch.arange(len(seq)), lengths - 2]                          # position L-2 predicts L-1


def part_next_item(run, n_sessions):
    gen = torch.Generator().manual_seed(run.seed + 100)
    seq, lengths = make_sessions(n_sessions, gen)
    data.announce("item sessions", "generated",
                  detail=f"{n_sessions} sessions, {N_NEXT_ITEMS} items; item t = succ(item t-{LAG}) "
                         f"with p {FOLLOW_P}, else Zipf({ZIPF_A})-popular")
    tr, va, te = split(n_sessions, (0.8, 0.1), gen)

    # the metrics on a hand case: 3 users, 5 items, targets at ranks 0, 2 and 3; with k = 3
    # (rank 3 = k is a miss): Recall = 2/3, NDCG = (1/log2(2) + 1/log2(4) + 0) / 3 = 0.5
    hand = torch.tensor([[0.9, 0.1, 0.2, 0.3, 0.0],
                         [0.5, 0.4, 0.1, 0.6, 0.3],
                         [0.5, 0.4, 0.3, 0.2, 0.1]])
    rank = rank_of_target(hand, torch.tensor([0, 1, 3]))
    check.equal("hand case: ranks of the targets", rank.tolist(), [0, 2, 3])
    check.close("hand case: Recall@3, NDCG@3", recall_ndcg(rank, 3), [2 / 3, 0.5], atol=1e-12)

    torch.manual_seed(run.seed)
    model = NextItem(seq.shape[1]).to(run.device)
    # causality: changing items after position t leaves the outputs at 0..t unchanged
    with torch.no_grad():
        model.eval()
        x = seq[tr[:5]].clone()
        t = 3
        y2 = x.clone()
        y2[:, t + 1:NEXT_LEN[0]] = torch.randint(1, N_NEXT_ITEMS + 1, (5, NEXT_LEN[0] - t - 1),
                                                 generator=gen)
        a, b = model(x.to(run.device))[:, :t + 1], model(y2.to(run.device))[:, :t + 1]
        check.close(f"causal mask: outputs at positions 0..{t} ignore changed later items", a, b,
                    atol=1e-5)
    opt = torch.optim.Adam(model.parameters(), lr=T_LR)
    order = torch.Generator().manual_seed(run.seed + 2)
    best, best_state = -1.0, None
    for _ in range(run.epochs):
        model.train()
        for idx in torch.randperm(len(tr), generator=order).split(BATCH):
            s = seq[tr[idx]].to(run.device)
            logits = model(s[:, :-1])                                        # (B, T-1, V)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                   s[:, 1:].reshape(-1), ignore_index=0)     # padding targets skipped
            opt.zero_grad()
            loss.backward()
            opt.step()
        rank = rank_of_target(last_logits(model, seq[va], lengths[va], run.device),
                              seq[va, lengths[va] - 1])
        val = recall_ndcg(rank, K)[0]
        if val > best:
            best, best_state = val, {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    target = seq[te, lengths[te] - 1]
    rec, ndcg = recall_ndcg(rank_of_target(last_logits(model, seq[te], lengths[te], run.device),
                                           target), K)
    counts = torch.bincount(seq[tr].flatten(), minlength=N_NEXT_ITEMS + 1).double()
    counts[0] = -1                                                           # padding is no item
    pop_rec, pop_ndcg = recall_ndcg(rank_of_target(counts.expand(len(te), -1), target), K)
    print(f"  causal Transformer: Recall@{K} {rec:.3f}  NDCG@{K} {ndcg:.3f} (val Recall {best:.3f})")
    print(f"  popularity:         Recall@{K} {pop_rec:.3f}  NDCG@{K} {pop_ndcg:.3f}")
    check.greater(f"Recall@{K}: Transformer beats popularity by > 0.2", rec - pop_rec, 0.2)
    return dict(recall_transformer=rec, ndcg_transformer=ndcg, recall_pop=pop_rec, ndcg_pop=pop_ndcg)


def main(args) -> dict:
    run = cli.start(args, __file__)
    torch.set_num_threads(1)
    sizes = dict(N_USERS=N_USERS, N_SESSIONS=N_SESSIONS) | (QUICK if run.quick else {})
    print("part 1: click prediction, mean vs target-attention pooling")
    results, oracle, (n_same, wsum) = part_clicks(run, sizes["N_USERS"])
    print("part 2: next-item prediction")
    nxt = part_next_item(run, sizes["N_SESSIONS"])

    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    ax[0].bar(["mean", "softmax att.", "DIN", "oracle"],
              [results["mean"], results["softmax"], results["din"], oracle])
    ax[0].set_ylim(0.5, 1.0)
    ax[0].set_ylabel("test AUC")
    ax[0].set_title("click prediction")
    ax[1].scatter(n_same, wsum, s=4, alpha=0.3)
    ax[1].set_xlabel("past items of the candidate's category")
    ax[1].set_ylabel("sum of DIN attention weights")
    ax[1].set_title("unnormalised weights carry the count")
    plot.save(fig, run, "din.png")
    metrics = {f"auc_{k}": v for k, v in results.items()} | {"auc_oracle": oracle} | nxt
    metrics["epochs"] = run.epochs
    # Questions to think about: if P(click) depended on the FRACTION of relevant items instead of
    # their count, would DIN still beat softmax attention? Which pooling would suffer most if
    # padding were not masked, and why does the mean suffer even with the mask?
    best = max(results, key=results.get)
    answers = {
        "best_pooling": (best, "test AUC " + ", ".join(f"{k} {v:.3f}" for k, v in results.items())
                         + " (din.png, left)"),
        "beats_popularity": ("yes" if nxt["recall_transformer"] - nxt["recall_pop"] > 0.2 else "no",
                             f"Recall@{K}: causal Transformer {nxt['recall_transformer']:.3f}, popularity "
                             f"{nxt['recall_pop']:.3f}"),
    }
    return cli.finish(run, metrics, answers=answers)


# Predict, then run: answer in your copy (`python -m dlcourse exercise 07.12`) before running it;
# `python -m dlcourse check 07.12` compares your answers with what the run measures.
# PREDICT best_pooling (mean / softmax / din): P(click) rises with the COUNT of past items of the candidate's category: which pooling gets the highest test AUC?
# ANSWER best_pooling:
# PREDICT beats_popularity (yes / no): next-item prediction, where 60% of the next items follow from the last one: does the causal Transformer's Recall@10 beat the popularity ranking's by more than 0.2?
# ANSWER beats_popularity:


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
