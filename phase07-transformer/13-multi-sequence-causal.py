"""13 - Research question: causal representations of multi-sequence user behaviour (phase 07, week 12)

Goal: generated users with four event streams (install, purchase, view, click), each event with a
      time; a planted cause (installing app A before the prediction time T makes a later purchase
      of A likely) and a spurious correlate (views of page B, which co-occur with the install in
      training and flip under a shift). Train attention models over the streams - self-attention
      over the merged sequence, or cross-attention from the action stream (install, purchase) to
      the browse stream (view, click) - naively, with a masked-event auxiliary loss, and with
      counterfactual interventions; then probe them by counterfactual masking and temporal moves,
      and evaluate under the shift.
Run:  python phase07-transformer/13-multi-sequence-causal.py            (5 models; 92-100 s on a 2-core CPU, seed 0)
      python phase07-transformer/13-multi-sequence-causal.py --quick    (2 models; about 3 s of lesson time)
Expect: events at or after T change nothing (max |diff| 0); the batched model equals a per-user
        run on that user's past events alone (~1e-7); the naive models' AUC falls from ~0.85 to
        ~0.6 under the shift and their log loss nearly doubles; the counterfactually trained
        ones score ~0.75-0.79 before and after, near the cause-only score (~0.76), with a flat
        log loss; removing the install drops their P(buy) by ~0.6, removing B's views moves it
        by ~0.02. Their own AUC still moves by up to ~0.05 (printed, not asserted: see below).
        The write-up: docs/research/multi-sequence-causal.md.
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked

EPOCHS = 30          # full run: epochs for each model
QUICK_EPOCHS = 8     # --quick


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

from dlcourse import check, data, lessons, plot
import matplotlib.pyplot as plt  # after dlcourse.plot, which picks the headless backend

din = lessons.load("07.12")   # lesson 12: auc (rank-sum AUC, ties averaged) and auc_se

INSTALL, PURCHASE, VIEW, CLICK = range(4)   # event types: the four streams
ACTION, BROWSE = (INSTALL, PURCHASE), (VIEW, CLICK)
N_IDS = 12           # ids per type (apps, pages); id 0 of INSTALL/PURCHASE is app A, of VIEW page B
T_PRED = 0.7         # prediction time T: the model may use events with time < T only
P_INSTALL = 0.5      # P(user installs app A before T)
P_LOGGED = 0.7       # the install is logged with this probability (logs lose events): the
                     # cause is seen noisily, which makes the correlate tempting
P_BUY = (0.1, 0.85)  # P(purchase of A after T | no install, install): the planted mechanism
P_B_TRAIN = (0.1, 0.9)    # P(views of B | no install, install) in training ...
P_B_SHIFT = (0.9, 0.1)    # ... and after the shift: the correlation flips
N_B_VIEWS = 3        # views of B when present
N_BACKGROUND = 10    # other events per user at uniform times in [0, 1]
N_USERS = 12000      # training-distribution users (train 75% / validation 25%), full run
N_EVAL = 8000        # fresh users in each evaluation set (test, shifted): inference only, so
                     # large sets are cheap and keep the AUC standard errors small
D, HEADS = 24, 2     # model width, attention heads
LR = 3e-3            # Adam learning rate
BATCH = 128          # users per step
MASK_P = 0.15        # share of visible events masked for the auxiliary loss
AUX_W = 0.3          # weight of the masked-event loss
SIGMAS = 4           # margins from AUC standard errors
MIN_DROP = 0.2       # removing the install must lower the causal model's mean P(buy) by this

# --quick overrides, in one place
QUICK = dict(N_USERS=2000, N_EVAL=4000,
             MODELS=("naive self-attn", "self-attn + counterfactuals + aux"))


# ---- data ---------------------------------------------------------------------------------------
def make_users(n, gen, p_b):
    """Events in fixed slots: 0 the install of A, 1..N_B_VIEWS the views of B, then the purchase
    of A (after T when it happens), then background. The model never sees slot numbers: only
    type, id and time. Returns a dict of (n, S) tensors and labels/installs (n,)."""
    S = 1 + N_B_VIEWS + 1 + N_BACKGROUND
    u = lambda *shape: torch.rand(*shape, generator=gen)                    # noqa: E731
    installed = u(n) < P_INSTALL
    y = (u(n) < torch.where(installed, P_BUY[1], P_BUY[0])).float()
    has_b = u(n) < torch.where(installed, p_b[1], p_b[0])
    etype = torch.empty(n, S, dtype=torch.long)
    eid = torch.randint(1, N_IDS, (n, S), generator=gen)                    # background ids != 0
    time = u(n, S)
    valid = torch.ones(n, S, dtype=torch.bool)
    etype[:, 0], eid[:, 0], time[:, 0] = INSTALL, 0, u(n) * T_PRED * 0.9
    valid[:, 0] = installed & (u(n) < P_LOGGED)
    b = slice(1, 1 + N_B_VIEWS)
    etype[:, b], eid[:, b], time[:, b] = VIEW, 0, u(n, N_B_VIEWS) * T_PRED
    valid[:, b] = has_b.unsqueeze(1)
    p = 1 + N_B_VIEWS
    etype[:, p], eid[:, p], time[:, p] = PURCHASE, 0, T_PRED + u(n) * (1 - T_PRED)  # the future
    valid[:, p] = y.bool()
    etype[:, p + 1:] = torch.randint(0, 4, (n, N_BACKGROUND), generator=gen)
    time[:, p + 1] = u(n) * T_PRED          # at least one visible event per user
    return dict(etype=etype, eid=eid, time=time, valid=valid), y, installed


def take(x, idx):
    return {k: v[idx] for k, v in x.items()}


def remove_events(x, etype, eid):
    """Counterfactual masking: the same users without any event (etype, eid)."""
    # EXERCISE remove_events: a shallow copy of x whose "valid" is False wherever the event type is etype AND the id is eid (do not modify x)
    out = dict(x)
    out["valid"] = x["valid"] & ~((x["etype"] == etype) & (x["eid"] == eid))
    return out
    # END EXERCISE


def move_after_t(x, etype, eid):
    """Temporal move: the events (etype, eid) happen after T instead (same users otherwise)."""
    out = dict(x)
    hit = (x["etype"] == etype) & (x["eid"] == eid)
    out["time"] = torch.where(hit, T_PRED + (1 - T_PRED) * x["time"], x["time"])
    return out


# ---- model --------------------------------------------------------------------------------------
class StreamModel(nn.Module):
    """Embed each event as type + (type, id) + time-before-T, one attention layer, then a learned
    query pools the events into a vector and an MLP gives the purchase logit.

    mode 'self':  every visible event attends to every visible event (the merged sequence)
    mode 'cross': action events (install, purchase) attend to the browse events (view, click)
                  and to themselves; browse events only to themselves
    Visible = a real event with time < T: everything else is hidden by the masks, so the future
    (including the purchase being predicted) cannot leak in."""

    def __init__(self, mode):
        super().__init__()
        assert mode in ("self", "cross"), mode
        self.mode = mode
        self.type_emb = nn.Embedding(4, D)
        self.id_emb = nn.Embedding(4 * N_IDS + 1, D)   # the last row is [MASK]
        self.time_proj = nn.Linear(1, D)
        self.attn = nn.MultiheadAttention(D, HEADS, batch_first=True)
        self.norm = nn.LayerNorm(D)
        self.query = nn.Parameter(torch.randn(1, 1, D) * 0.1)
        self.pool = nn.MultiheadAttention(D, HEADS, batch_first=True)
        self.head = nn.Sequential(nn.Linear(D, D), nn.ReLU(), nn.Linear(D, 1))
        self.aux_head = nn.Linear(D, 4 * N_IDS)        # masked event -> its (type, id)

    def visible(self, x):
        # EXERCISE visible: an event may be used when it is real ("valid") and happened strictly before the prediction time T_PRED
        return x["valid"] & (x["time"] < T_PRED)                             # (B, S)
        # END EXERCISE

    def encode(self, x, masked=None):
        """-> per-event states (B, S, D) and the visibility mask (B, S)."""
        vis = self.visible(x)
        key = x["etype"] * N_IDS + x["eid"]                                  # (B, S)
        if masked is not None:
            key = key.masked_fill(masked, 4 * N_IDS)
        dt = (T_PRED - x["time"]).clamp_min(0).unsqueeze(-1)                 # (B, S, 1)
        h = self.type_emb(x["etype"]) + self.id_emb(key) + self.time_proj(dt)  # (B, S, D)
        B, S = vis.shape
        if self.mode == "self":
            rule = torch.ones(B, S, S, dtype=torch.bool, device=h.device)
        else:
            is_act = (x["etype"] == INSTALL) | (x["etype"] == PURCHASE)      # (B, S)
            rule = is_act.unsqueeze(2) & ~is_act.unsqueeze(1)                # (B, Sq, Sk) act -> browse
        eye = torch.eye(S, dtype=torch.bool, device=h.device)
        allowed = (rule & vis.unsqueeze(1)) | eye      # hidden keys out; the diagonal keeps every
                                                       # row finite (hidden rows are pooled out)
        blocked = (~allowed).repeat_interleave(HEADS, dim=0)                 # (B*HEADS, S, S)
        a, _ = self.attn(h, h, h, attn_mask=blocked, need_weights=False)     # (B, S, D)
        return self.norm(h + a), vis

    def forward(self, x, masked=None, return_states=False):
        h, vis = self.encode(x, masked)
        q = self.query.expand(h.shape[0], 1, D)                              # (B, 1, D)
        pooled, _ = self.pool(q, h, h, key_padding_mask=~vis, need_weights=False)  # (B, 1, D)
        logit = self.head(pooled.squeeze(1)).squeeze(-1)                     # (B,)
        return (logit, h, vis) if return_states else logit


# ---- training -----------------------------------------------------------------------------------
def counterfactual_batch(x, y, installed, gen):
    """The interventions, answered by the simulator (in practice: an experiment):
    do(views of B := coin) keeps the label - B causes nothing; do(no install) gives the label
    the mechanism gives without it."""
    # EXERCISE counterfactual_batch: copy 1: B's view slots 1..N_B_VIEWS set by a fair coin per user, labels kept; copy 2: the install removed, installers relabelled by a P_BUY[0] draw; return both copies concatenated, with their labels
    n = len(y)
    cf_b = dict(x)
    cf_b["valid"] = x["valid"].clone()
    cf_b["valid"][:, 1:1 + N_B_VIEWS] = (torch.rand(n, generator=gen) < 0.5).unsqueeze(1)
    cf_a = remove_events(x, INSTALL, 0)
    y_a = torch.where(installed, (torch.rand(n, generator=gen) < P_BUY[0]).float(), y)
    both = {k: torch.cat([cf_b[k], cf_a[k]]) for k in x}
    return both, torch.cat([y, y_a])
    # END EXERCISE


def train(run, mode, tr, va, counterfactual, aux):
    """Adam on BCE (+ the masked-event loss); keeps the epoch with the best validation AUC.
    A counterfactually trained model is also SELECTED on counterfactual copies of the validation
    users: selecting it on the observational logs would pick the epoch that uses B the most."""
    torch.manual_seed(run.seed)
    model = StreamModel(mode).to(run.device)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    gen = torch.Generator().manual_seed(run.seed + 1)
    x, y, installed = tr
    if counterfactual:
        va = counterfactual_batch(*va, torch.Generator().manual_seed(run.seed + 2))
    best, best_state = -1.0, None
    for _ in range(run.epochs):
        model.train()
        for idx in torch.randperm(len(y), generator=gen).split(BATCH):
            xb, yb = take(x, idx), y[idx]
            if counterfactual:
                xb, yb = counterfactual_batch(xb, yb, installed[idx], gen)
            xb = {k: v.to(run.device) for k, v in xb.items()}
            masked = None
            if aux:
                masked = (torch.rand(xb["valid"].shape, generator=gen).to(run.device) < MASK_P) \
                    & model.visible(xb)
            logit, h, _ = model(xb, masked, return_states=True)
            loss = F.binary_cross_entropy_with_logits(logit, yb.to(run.device))
            if aux and masked.any():
                target = (xb["etype"] * N_IDS + xb["eid"])[masked]
                loss = loss + AUX_W * F.cross_entropy(model.aux_head(h[masked]), target)
            opt.zero_grad()
            loss.backward()
            opt.step()
        v = din.auc(predict(model, va[0], run.device), va[1])
        if v > best:
            best, best_state = v, {k: t.clone() for k, t in model.state_dict().items()}
    model.load_state_dict(best_state)
    return model


def per_user_nll(p, y):
    """Per-user log loss (nats) of predicted P(buy) p against labels y -> (n,)."""
    return F.binary_cross_entropy(p.clamp(1e-6, 1 - 1e-6), y, reduction="none")


@torch.no_grad()
def predict(model, x, device):
    model.eval()
    return torch.sigmoid(model({k: v.to(device) for k, v in x.items()})).cpu()


# ---- main ---------------------------------------------------------------------------------------
def main(args) -> dict:
    run = cli.start(args, __file__)
    torch.set_num_threads(1)
    n = QUICK["N_USERS"] if run.quick else N_USERS
    n_eval = QUICK["N_EVAL"] if run.quick else N_EVAL
    gen = torch.Generator().manual_seed(run.seed)
    x, y, inst = make_users(n, gen, P_B_TRAIN)
    x_te, y_te, _ = make_users(n_eval, gen, P_B_TRAIN)      # test: the training distribution
    xs, ys, _ = make_users(n_eval, gen, P_B_SHIFT)          # the shift: B's correlation flipped
    data.announce("multi-stream user events", "generated",
                  detail=f"{n} users + {n_eval} test + {n_eval} shifted; install of A before T={T_PRED} causes a "
                         f"purchase (P {P_BUY[1]} vs {P_BUY[0]}); views of B co-occur with it in "
                         f"training (P {P_B_TRAIN}) and flip after the shift (P {P_B_SHIFT})")
    idx = torch.randperm(n, generator=gen)
    tr, va = idx[:int(0.75 * n)], idx[int(0.75 * n):]

    configs = {"naive self-attn": ("self", False, False), "naive cross-attn": ("cross", False, False),
               "self-attn + masked-event aux": ("self", False, True),
               "self-attn + counterfactuals + aux": ("self", True, True),
               "cross-attn + counterfactuals + aux": ("cross", True, True)}
    if run.quick:                                  # --quick: one naive, one causal model
        configs = {k: configs[k] for k in QUICK["MODELS"]}
    models, res, nll = {}, {}, {}
    for name, (mode, cf, aux) in configs.items():
        m = train(run, mode, (take(x, tr), y[tr], inst[tr]), (take(x, va), y[va], inst[va]),
                  cf, aux)
        models[name] = m
        p_te, p_sh = predict(m, x_te, run.device), predict(m, xs, run.device)
        res[name] = (din.auc(p_te, y_te), din.auc(p_sh, ys))
        nll[name] = (per_user_nll(p_te, y_te), per_user_nll(p_sh, ys))
        print(f"  {name:36s} test AUC {res[name][0]:.3f}   shifted AUC {res[name][1]:.3f}")

    # -- exact checks of the masks, on every trained model and an untrained cross-attention one
    # (so --quick, which trains no cross-attention model, still checks that mask) --
    torch.manual_seed(run.seed)
    exact = dict(models, **{"untrained cross-attn": StreamModel("cross").to(run.device)})
    few = torch.arange(6)                          # 6 users: not HEADS, not D, not S
    xf = take(x_te, few)
    junk = make_users(len(few), gen, P_B_TRAIN)[0]
    future = xf["time"] >= T_PRED
    xf_junk = {k: torch.where(future, junk[k], xf[k]) for k in xf}          # new future events ...
    xf_junk["time"] = torch.where(future, T_PRED + (1 - T_PRED) * junk["time"], xf["time"])
    for name, m in exact.items():
        p = predict(m, xf, run.device)
        check.close(f"{name}: events at or after T change nothing", predict(m, xf_junk, run.device),
                    p, atol=1e-6)
        loop = []
        for i in range(len(few)):                  # one user at a time, its past events only
            keep = m.visible(take(xf, [i]))[0]
            loop.append(predict(m, {k: v[[i]][:, keep] for k, v in xf.items()}, run.device))
        check.close(f"{name}: batched vs per-user run on past events alone", torch.cat(loop), p,
                    atol=1e-5)
        inst_few = {k: v for k, v in xf.items()}
        check.close(f"{name}: install moved after T = install removed",
                    predict(m, move_after_t(inst_few, INSTALL, 0), run.device),
                    predict(m, remove_events(inst_few, INSTALL, 0), run.device), atol=1e-6)

    # -- counterfactual masking on ALL test users: the install's effect is averaged over the users
    # who have a logged install (nobody else has one to remove); B's over everyone who has B --
    logged, has_b = x_te["valid"][:, 0], x_te["valid"][:, 1]
    effects = {}
    for name, m in models.items():
        base = predict(m, x_te, run.device)
        d_inst = base - predict(m, remove_events(x_te, INSTALL, 0), run.device)
        d_b = base - predict(m, remove_events(x_te, VIEW, 0), run.device)
        effects[name] = (d_inst[logged].mean().item(), d_b[has_b].abs().mean().item(),
                         d_b[has_b & ~logged].abs().mean().item())
        print(f"  {name:36s} remove install: mean P drop {effects[name][0]:.3f}; "
              f"remove views of B: mean |change| {effects[name][1]:.3f} "
              f"({effects[name][2]:.3f} where no install is logged)")
    causal, naive = "self-attn + counterfactuals + aux", "naive self-attn"
    check.greater(f"{causal}: removing the install lowers P(buy) by > {MIN_DROP}",
                  effects[causal][0], MIN_DROP)
    check.less(f"{causal}: removing the views of B moves P(buy) less than removing the install / 5",
               effects[causal][1], effects[causal][0] / 5)
    check.less(f"{causal}: ... also where no install is logged (the users B could stand in for)",
               effects[causal][2], effects[causal][0] / 5)
    check.greater(f"{naive}: removing the views of B moves P(buy) more than for {causal}",
                  effects[naive][1], effects[causal][1])

    # -- the shift: margins from Hanley-McNeil standard errors --
    def se(a, labels):
        return din.auc_se(a, int(labels.sum()), int(len(labels) - labels.sum()))
    c_id, c_sh = res[causal]
    # the reference that uses the cause alone: score = "install of A logged before T" (0/1)
    o_id, o_sh = din.auc(x_te["valid"][:, 0].float(), y_te), din.auc(xs["valid"][:, 0].float(), ys)
    print(f"  cause only (logged install as the score) test AUC {o_id:.3f}   shifted AUC {o_sh:.3f}")
    n_id, n_sh = res[naive]
    tol = SIGMAS * math.hypot(se(c_id, y_te), se(c_sh, ys))
    check.greater(f"{naive}: AUC falls under the shift by > {SIGMAS} s.e.", n_id - n_sh,
                  SIGMAS * math.hypot(se(n_id, y_te), se(n_sh, ys)))
    check.greater(f"AUC drop under the shift: {naive} minus {causal} > {SIGMAS} s.e.",
                  (n_id - n_sh) - (c_id - c_sh),
                  SIGMAS * math.hypot(se(c_id, y_te), se(c_sh, ys), se(n_id, y_te), se(n_sh, ys)))
    check.greater(f"{causal}: shifted AUC not below the cause-only score's by > {SIGMAS} s.e.",
                  c_sh - o_sh, -SIGMAS * se(c_sh, ys))   # a model that still leans on B falls below
    # NOT asserted: that the causal model's own AUC stays within 4 s.e. The cause-only score
    # takes two values, so the order inside each group is decided by whatever else the model
    # uses: a B effect of 0.01-0.02 in P(buy) (the probe above) reorders all users without a
    # logged install. Measured: changes from -0.05 to +0.04, beyond 4 s.e. at some seeds and in
    # the full run - a small residual use of B (either sign), amplified by the ties.
    print(f"  {causal}: AUC change under the shift {c_sh - c_id:+.3f} (4 s.e. = {tol:.3f}; "
          f"{'within' if abs(c_sh - c_id) < tol else 'BEYOND'} it; not asserted, see the comment)")
    # Asserted instead, two-sided: the log loss, which small offsets move only a little.
    def nll_gap(k):
        a, b = nll[k]
        return (b.mean() - a.mean()).item(), math.hypot(a.std().item() / math.sqrt(len(a)),
                                                       b.std().item() / math.sqrt(len(b)))
    (c_gap, c_se), (n_gap, n_se) = nll_gap(causal), nll_gap(naive)
    print(f"  log loss test -> shifted: {naive} {nll[naive][0].mean():.3f} -> "
          f"{nll[naive][1].mean():.3f}; {causal} {nll[causal][0].mean():.3f} -> "
          f"{nll[causal][1].mean():.3f}")
    check.less(f"{causal}: log loss holds under the shift (|change| < {SIGMAS} s.e.)", abs(c_gap),
               SIGMAS * c_se)
    check.greater(f"{naive}: log loss rises under the shift by > {SIGMAS} s.e.", n_gap,
                  SIGMAS * n_se)
    check.greater(f"shifted AUC: {causal} beats {naive} by > {SIGMAS} s.e.", c_sh - n_sh,
                  SIGMAS * math.hypot(se(c_sh, ys), se(n_sh, ys)))

    fig, ax = plt.subplots(figsize=(9, 4))
    names = list(res)
    pos = np.arange(len(names))
    ax.bar(pos - 0.2, [res[k][0] for k in names], 0.4, label="test (training distribution)")
    ax.bar(pos + 0.2, [res[k][1] for k in names], 0.4, label="shifted (B correlation flipped)")
    ax.set_xticks(pos, [k.replace(" + ", "\n+ ") for k in names], fontsize=7)
    ax.set_ylim(0.4, 1.0)
    ax.set_ylabel("AUC")
    ax.legend()
    plot.save(fig, run, "shift.png")
    metrics = {"epochs": run.epochs}
    for k, (a, b) in res.items():
        key = k.replace(" + ", "_").replace(" ", "_").replace("-", "_")
        metrics[f"auc_{key}"], metrics[f"auc_shift_{key}"] = a, b
        metrics[f"drop_install_{key}"], metrics[f"change_b_{key}"] = effects[k][:2]
    # Questions to think about: why is a higher test AUC before the shift no evidence that a model
    # learnt the cause? Would the counterfactual copies help if the simulator's answer for
    # do(no install) were wrong?
    def higher(i, when):
        return ("naive" if res[naive][i] > res[causal][i] else "counterfactual",
                f"{when} AUC: {naive} {res[naive][i]:.3f}, {causal} {res[causal][i]:.3f} (shift.png)")
    answers = {"higher_test_auc": higher(0, "test"), "higher_shifted_auc": higher(1, "shifted")}
    return cli.finish(run, metrics, answers=answers)


# Predict, then run: answer in your copy (`python -m dlcourse exercise 07.13`) before running it;
# `python -m dlcourse check 07.13` compares your answers with what the run measures.
# PREDICT higher_test_auc (naive / counterfactual): on test users from the TRAINING distribution, which self-attention model has the higher AUC: the naive one or the one trained with counterfactual copies?
# ANSWER higher_test_auc:
# PREDICT higher_shifted_auc (naive / counterfactual): and after the shift, when the views of page B flip their correlation with the install?
# ANSWER higher_shifted_auc:


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
