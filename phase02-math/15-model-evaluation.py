"""15 - Model evaluation: metrics, ROC/PR, cross-validation (phase 02, week 3)

Goal: compute the confusion matrix, precision/recall/F1, ROC-AUC, the PR curve and k-fold
      cross-validation from scratch, equal to sklearn.metrics, and build an evaluation you can trust:
      no duplicate leakage (group splits), time-based splits under drift, and a shift detector.
Run:  python phase02-math/15-model-evaluation.py            (all 569 tumours; about 2 s on a 2-core CPU)
      python phase02-math/15-model-evaluation.py --quick    (seconds, offline, used by the tests)
Expect: every metric equals sklearn's (max diff ~1e-16), on raw and on tied scores; test ROC-AUC
      0.851 with a bootstrap 95% interval 0.791-0.904; 5-fold CV accuracy 0.796 +- 0.068 (seed 0,
      full); figure curves.png.
      Trustworthy sets (generated data, --quick seed 0): near-duplicates make a random split score
      0.98 vs 0.81 for a group split and 0.75 on new items; on a drifting stream random folds say
      0.91, forward chaining (= TimeSeriesSplit) 0.83, the future is 0.83; under covariate shift
      accuracy falls from 0.86 to 0.51 and adversarial validation's AUC goes from ~0.5 to 0.92;
      figure trustworthy.png.
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked


def parse_args(argv=None):
    return cli.parser(__doc__).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (average_precision_score, confusion_matrix, f1_score, precision_score,
                             recall_score, roc_auc_score, roc_curve)
from scipy.sparse.csgraph import connected_components
from sklearn.model_selection import (GroupKFold, KFold, TimeSeriesSplit, cross_val_predict, cross_val_score,
                                     train_test_split)
from sklearn.neighbors import KNeighborsClassifier, radius_neighbors_graph
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from dlcourse import check, data, plot
import matplotlib.pyplot as plt

# A deliberately imperfect model: four weak features, so the curves have something to show.
FEATURES = ("mean texture", "mean smoothness", "mean symmetry", "mean fractal dimension")
FOLDS = 5              # cross-validation folds
TARGET_RECALL = 0.90   # operating point: catch at least this share of malignant tumours
BOOTSTRAP = 1000       # resamples of the test set for a confidence interval of the AUC
# Part 5, trustworthy evaluation sets (generated data; sizes kept small for speed):
DUP_ITEMS = 150        # distinct items; each is stored 1-5 times as near-duplicate rows
DUP_JITTER = 1e-3      # how far a near-duplicate row differs from its item (feature std is 1)
DUP_RADIUS = 0.05      # rows closer than this are grouped as one item (distinct items sit ~1 apart)
DRIFT_ROWS = 600       # rows of the drifting stream, in time order; the last 20% are "the future"
DRIFT_DEG = 180.0      # the class boundary turns by this much over the stream
SHIFT = 2.0            # production's mean shift of feature 0 (in standard deviations)
SHIFT_ROWS = 300       # rows in the evaluation set and in each production sample


def confusion(y, y_hat):
    """2x2 counts [[TN, FP], [FN, TP]]: rows = truth, columns = prediction (sklearn's layout)."""
    m = np.zeros((2, 2), dtype=int)
    np.add.at(m, (y, y_hat), 1)
    return m


def prf(m):
    """precision = TP / (TP + FP): of the alarms, how many were real.
    recall    = TP / (TP + FN): of the real cases, how many we caught.
    F1 = harmonic mean 2PR / (P + R): high only when both are."""
    # EXERCISE prf: unpack [[TN, FP], [FN, TP]]; precision = TP / (TP + FP), recall = TP / (TP + FN), F1 = 2PR / (P + R)
    (tn, fp), (fn, tp) = m
    p, r = tp / (tp + fp), tp / (tp + fn)
    return p, r, 2 * p * r / (p + r)
    # END EXERCISE


def curves(y, score):
    """Sweep the threshold from +inf down through every distinct score.

    After sorting by score (descending), the cumulative sums of y and 1 - y give TP and FP for
    'predict positive for the top i'. Only the last row of each group of equal scores is a real
    threshold. TPR = TP/P, FPR = FP/N (ROC); precision = TP/(TP+FP), recall = TPR (PR).
    """
    # EXERCISE curves: sort by score descending; keep only the last row of each tie group; cumsum y and 1 - y there give TP and FP; FPR and TPR start at 0; return (fpr, tpr, precision, recall, thresholds)
    order = np.argsort(-score, kind="stable")
    s, yy = score[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]        # end of each tie group
    tp, fp = np.cumsum(yy)[last], np.cumsum(1 - yy)[last]
    tpr = np.r_[0, tp / yy.sum()]
    fpr = np.r_[0, fp / (1 - yy).sum()]
    precision = tp / (tp + fp)
    return fpr, tpr, precision, tpr[1:], s[last]
    # END EXERCISE


def auc_trapezoid(fpr, tpr):
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def auc_rank(y, score):
    """AUC = P(score of a random positive > score of a random negative), ties counting 1/2
    (the Mann-Whitney U statistic). Same number as the area, seen as a probability."""
    pos, neg = score[y == 1], score[y == 0]
    return float(np.mean((pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])))


def average_precision(precision, recall):
    """AP = sum_n (R_n - R_{n-1}) P_n: the PR curve's area as a step function (no interpolation)."""
    return float(np.sum(np.diff(np.r_[0, recall]) * precision))


def stratified_folds(y, k, rng):
    """Shuffle each class separately and deal its rows round-robin into k folds, so every fold
    keeps the class balance of the whole set."""
    fold = np.empty(len(y), dtype=int)
    for c in np.unique(y):
        rows = rng.permutation(np.flatnonzero(y == c))
        fold[rows] = np.arange(len(rows)) % k
    return fold


def check_threshold_free(y, score, label):
    """ROC curve, ROC-AUC (as an area and as a ranking probability) and average precision, each
    against sklearn. Run on the model's raw scores AND on scores rounded to one decimal: raw
    probabilities never tie, and only ties reach the tie-group and tie-counting code."""
    fpr, tpr, precision, recall, _ = curves(y, score)
    ref_fpr, ref_tpr, _ = roc_curve(y, score, drop_intermediate=False)
    check.close(f"{label}: ROC curve (FPR, TPR) vs roc_curve", np.c_[fpr, tpr], np.c_[ref_fpr, ref_tpr],
                atol=1e-12)
    auc = auc_trapezoid(fpr, tpr)
    check.close(f"{label}: ROC-AUC (trapezoid) vs roc_auc_score", auc, roc_auc_score(y, score), atol=1e-12)
    check.close(f"{label}: ROC-AUC as P(pos ranked above neg) vs trapezoid", auc_rank(y, score), auc,
                atol=1e-12)
    ap = average_precision(precision, recall)
    check.close(f"{label}: average precision vs average_precision_score", ap,
                average_precision_score(y, score), atol=1e-12)
    return fpr, tpr, precision, recall, auc, ap


def near_duplicate_groups(x, radius):
    """Group id per row: rows linked by chains of neighbours closer than `radius` form one group
    (connected components of the radius graph). An exact hash would miss copies that differ in
    the last digits; this catches them."""
    return connected_components(radius_neighbors_graph(x, radius), directed=False)[1]


def group_folds(group, k, rng):
    """Deal whole groups (not rows) into k folds: every copy of an item lands in the same fold."""
    fold_of_group = rng.permutation(group.max() + 1) % k
    return fold_of_group[group]


def forward_chain(n, k):
    """Forward-chaining splits of n time-ordered rows (sklearn's TimeSeriesSplit): k validation
    blocks of n // (k + 1) rows at the end; each fold trains on everything before its block."""
    # EXERCISE forward_chain: k validation blocks of n // (k + 1) rows ending at n; for each, yield (every row before the block, the block)
    size = n // (k + 1)
    for i in range(k):
        start = n - (k - i) * size
        train = np.arange(start)
        yield train, np.arange(start, start + size)
    # END EXERCISE


def duplicate_leakage(run, rng):
    """5a. The same item stored several times (scraped twice, re-uploaded, augmented before the
    split). A random split puts copies on both sides, and a 1-nearest-neighbour model simply looks
    up the copy: the score measures memory, not generalisation. Labels carry noise (a fifth flipped
    by the 0.8 noise term), which only a model that has seen the copy can 'predict'."""
    def items(n):
        xi = rng.normal(size=(n, 5))
        return xi, (xi[:, 0] + xi[:, 1] + 0.8 * rng.normal(size=n) > 0).astype(int)
    xi, yi = items(DUP_ITEMS)
    true_group = np.repeat(np.arange(DUP_ITEMS), rng.integers(1, 6, DUP_ITEMS))   # (rows,) item id
    x = xi[true_group] + DUP_JITTER * rng.normal(size=(len(true_group), 5))
    y = yi[true_group]
    x_new, y_new = items(1000)                                  # new items: what deployment sees
    data.announce("near-duplicate rows of random items (5 Gaussian features, noisy linear labels)",
                  kind="generated", detail=f"{DUP_ITEMS} items stored as {len(y)} rows, plus 1000 new items")
    group = near_duplicate_groups(x, DUP_RADIUS)
    fold = group_folds(group, FOLDS, rng)
    # The generator knows each row's item: no item may have rows in two folds.
    spread = np.array([len(np.unique(fold[true_group == g])) for g in range(DUP_ITEMS)])
    check.equal("group split: every item's copies lie in one fold (no item on both sides)",
                int(spread.max()), 1)
    knn = lambda: KNeighborsClassifier(1)                      # noqa: E731
    random_cv = cross_val_score(knn(), x, y, cv=KFold(FOLDS, shuffle=True, random_state=run.seed)).mean()
    group_cv = np.mean([knn().fit(x[fold != f], y[fold != f]).score(x[fold == f], y[fold == f])
                        for f in range(FOLDS)])
    sk_group_cv = cross_val_score(knn(), x, y, cv=GroupKFold(FOLDS), groups=group).mean()
    new = knn().fit(x, y).score(x_new, y_new)
    print(f"duplicates: {len(np.unique(group))} groups found for {DUP_ITEMS} items; 1-NN accuracy: random "
          f"{FOLDS}-fold {random_cv:.3f} | our group folds {group_cv:.3f} | GroupKFold {sk_group_cv:.3f} "
          f"| new items {new:.3f}")
    # Measured, --quick seeds 0-4: random 0.97-0.99, group 0.73-0.81, new items 0.70-0.75.
    check.greater("random split overstates accuracy by > 0.1 over the group split", random_cv, group_cv + 0.1)
    return dict(random=random_cv, group=group_cv, new=new)


def time_drift(run, rng):
    """5b. A stream whose labelling rule turns over time (concept drift). The model (15-NN) sees the
    time stamp as a feature, as real models see dates, IDs and counters. Random folds let it peek at
    rows from just before and just after each validation row; forward chaining trains on the past
    only and validates on the next block, as deployment will."""
    t = np.arange(DRIFT_ROWS) / DRIFT_ROWS                    # (rows,) time, in order
    x = rng.normal(size=(DRIFT_ROWS, 2))
    th = np.radians(DRIFT_DEG) * t                             # the rule's direction at time t
    y = (x[:, 0] * np.cos(th) + x[:, 1] * np.sin(th) + 0.3 * rng.normal(size=DRIFT_ROWS) > 0).astype(int)
    feats = np.c_[x, 3 * t]                                    # (rows, 3) time scaled like a feature
    data.announce("a drifting stream (2 Gaussian features, boundary turning over time)", kind="generated",
                  detail=f"{DRIFT_ROWS} rows in time order, the last 20% held out as the future")
    past = int(0.8 * DRIFT_ROWS)
    splits = list(forward_chain(past, FOLDS))
    check.true("forward chaining: every validation row is later than every training row",
               all(tr.max() < va.min() for tr, va in splits),
               "; ".join(f"train 0-{tr.max()} < val {va.min()}-{va.max()}" for tr, va in splits))
    ref = list(TimeSeriesSplit(FOLDS).split(feats[:past]))
    check.true("forward chaining equals sklearn's TimeSeriesSplit (same indices, every fold)",
               all(np.array_equal(a, c) and np.array_equal(b, d) for (a, b), (c, d) in zip(splits, ref)),
               f"{len(splits)} folds compared")
    knn = lambda: KNeighborsClassifier(15)                     # noqa: E731
    random_cv = cross_val_score(knn(), feats[:past], y[:past],
                                cv=KFold(FOLDS, shuffle=True, random_state=run.seed)).mean()
    forward_cv = np.mean([knn().fit(feats[a], y[a]).score(feats[b], y[b]) for a, b in splits])
    future = knn().fit(feats[:past], y[:past]).score(feats[past:], y[past:])
    print(f"drift: 15-NN accuracy: random {FOLDS}-fold {random_cv:.3f} | forward chaining {forward_cv:.3f} "
          f"| the future {future:.3f}")
    # Measured, --quick seeds 0-4: random 0.87-0.91, forward 0.80-0.83, future 0.76-0.83: forward
    # chaining is the closer estimate, and the random folds' edge over it held on every seed.
    check.greater("random folds on a drifting stream are optimistic vs forward chaining", random_cv,
                  forward_cv + 0.02)
    return dict(random=random_cv, forward=forward_cv, future=future)


def covariate_shift(run, rng):
    """5c. Offline vs online. The true rule is curved (y = 1 when x1 > x0^2/2 - 1, plus noise); the
    evaluation set covers x0 near 0, where a line fits it well. Production drifts to x0 near SHIFT,
    where the line is wrong: the offline score no longer predicts the online one.
    Adversarial validation detects the shift before any production label exists: train a
    classifier to tell evaluation rows from production rows. If it cannot (AUC ~ 0.5), the sets
    look alike; if it can, they differ, and its top features say where."""
    def sample(n, shift):
        x = rng.normal(size=(n, 4))
        x[:, 0] += shift
        return x, (x[:, 1] + 0.3 * rng.normal(size=n) > x[:, 0] ** 2 / 2 - 1).astype(int)
    x_tr, y_tr = sample(4 * SHIFT_ROWS, 0.0)
    x_ev, y_ev = sample(SHIFT_ROWS, 0.0)
    x_same, y_same = sample(SHIFT_ROWS, 0.0)                   # production, no shift
    x_prod, y_prod = sample(SHIFT_ROWS, SHIFT)                 # production, shifted
    data.announce("a curved rule on 4 Gaussian features; production shifts feature 0", kind="generated",
                  detail=f"{4 * SHIFT_ROWS} train, {SHIFT_ROWS} evaluation and 2 x {SHIFT_ROWS} production rows")
    clf = LogisticRegression().fit(x_tr, y_tr)
    acc = {k: clf.score(a, b) for k, (a, b) in
           {"evaluation": (x_ev, y_ev), "production, same": (x_same, y_same),
            "production, shifted": (x_prod, y_prod)}.items()}

    def adversarial_auc(a, b):
        xs, dom = np.r_[a, b], np.r_[np.zeros(len(a)), np.ones(len(b))].astype(int)
        p = cross_val_predict(LogisticRegression(), xs, dom, cv=FOLDS, method="predict_proba")[:, 1]
        return auc_rank(dom, p)                                 # out-of-fold: no row scores itself
    auc_same, auc_shift = adversarial_auc(x_ev, x_same), adversarial_auc(x_ev, x_prod)
    # Under "no difference" the AUC (Mann-Whitney) has std sqrt((n1 + n2 + 1) / (12 n1 n2)). Out-of-fold
    # scores under the null lean slightly below 0.5 (each fold's model learns a spurious difference that
    # points the wrong way on held-out rows; measured 0.445-0.511 on seeds 0-4), hence 4 std.
    se0 = np.sqrt((2 * SHIFT_ROWS + 1) / (12 * SHIFT_ROWS ** 2))
    print("covariate shift: accuracy " + " | ".join(f"{k} {v:.3f}" for k, v in acc.items())
          + f"; adversarial AUC: no shift {auc_same:.3f} (null std {se0:.3f}), shift {auc_shift:.3f}")
    check.less("adversarial validation, no shift: AUC within 4 null std of 0.5", abs(auc_same - 0.5), 4 * se0)
    check.greater("adversarial validation, shifted production: AUC > 0.8", auc_shift, 0.8)
    return dict(acc=acc, auc_same=auc_same, auc_shift=auc_shift)


def model():
    return make_pipeline(StandardScaler(), LogisticRegression())


def main(args) -> dict:
    run = cli.start(args, __file__, use_torch=False)
    rng = np.random.default_rng(run.seed)
    d = load_breast_cancer()
    n = 300 if run.quick else len(d.data)
    cols = [list(d.feature_names).index(f) for f in FEATURES]
    x, y = d.data[:n][:, cols], 1 - d.target[:n]               # 1 = malignant: the case we look for
    data.announce("scikit-learn breast cancer (Wisconsin diagnostic), 4 weak features", kind="bundled",
                  detail=f"{n} tumours, {y.mean():.0%} malignant")

    # A trustworthy evaluation set is split off FIRST, stratified, and touched once at the end.
    # Everything else (model choice, threshold) is decided on training/validation data.
    x_dev, x_te, y_dev, y_te = train_test_split(x, y, test_size=0.3, stratify=y, random_state=run.seed)
    x_tr, x_val, y_tr, y_val = train_test_split(x_dev, y_dev, test_size=0.3, stratify=y_dev,
                                                random_state=run.seed)
    shared = set(map(bytes, x_te)) & set(map(bytes, x_dev))
    check.equal("no row appears in both the test set and the development set", len(shared), 0)

    clf = model().fit(x_tr, y_tr)
    s_val, s_te = clf.predict_proba(x_val)[:, 1], clf.predict_proba(x_te)[:, 1]

    # 1. Threshold-dependent metrics at the default 0.5.
    y_hat = (s_te >= 0.5).astype(int)
    m = confusion(y_te, y_hat)
    check.equal("confusion matrix vs sklearn", m, confusion_matrix(y_te, y_hat))
    ours = prf(m)
    ref = (precision_score(y_te, y_hat), recall_score(y_te, y_hat), f1_score(y_te, y_hat))
    check.close("precision, recall, F1 vs sklearn", np.array(ours), np.array(ref), atol=1e-12)
    print(f"at threshold 0.5: TN={m[0, 0]} FP={m[0, 1]} FN={m[1, 0]} TP={m[1, 1]}; "
          f"precision {ours[0]:.3f} recall {ours[1]:.3f} F1 {ours[2]:.3f}")

    # 2. Threshold-free: ROC and PR curves over all thresholds.
    fpr, tpr, precision, recall, auc, ap = check_threshold_free(y_te, s_te, "test scores")
    rounded = np.round(s_te, 1)
    assert len(np.unique(rounded)) < len(rounded), "rounding was meant to create ties"
    check_threshold_free(y_te, rounded, "scores rounded to 0.1 (ties)")

    # A test set is a sample: bootstrap it to see how much the AUC would move on another one.
    boots = []
    for _ in range(BOOTSTRAP if not run.quick else 200):
        i = rng.integers(0, len(y_te), len(y_te))
        if 0 < y_te[i].sum() < len(i):                          # need both classes
            f, t, *_ = curves(y_te[i], s_te[i])
            boots.append(auc_trapezoid(f, t))
    lo, hi = np.percentile(boots, [2.5, 97.5])
    print(f"test ROC-AUC {auc:.3f} (bootstrap 95% interval {lo:.3f}-{hi:.3f}), average precision {ap:.3f} "
          f"(a random model scores AP = prevalence {y_te.mean():.2f})")
    # Cross-check the bootstrap with the analytic standard error of Hanley & McNeil (1982):
    # SE^2 = [A(1-A) + (n_p - 1)(Q1 - A^2) + (n_n - 1)(Q2 - A^2)] / (n_p n_n),
    # Q1 = A / (2 - A), Q2 = 2A^2 / (1 + A). Both are approximations: a standard deviation from B
    # resamples is itself off by ~1/sqrt(2B) (5% for the 200 of --quick), and Hanley-McNeil assumes
    # exponential-shaped score distributions. 30% leaves room for both (measured: within 11% for
    # --quick seeds 10-29); resampling without replacement (std 0) lands far outside.
    n_p, n_n = y_te.sum(), len(y_te) - y_te.sum()
    q1, q2 = auc / (2 - auc), 2 * auc ** 2 / (1 + auc)
    se = np.sqrt((auc * (1 - auc) + (n_p - 1) * (q1 - auc ** 2) + (n_n - 1) * (q2 - auc ** 2)) / (n_p * n_n))
    check.close("bootstrap std of the AUC vs Hanley-McNeil standard error (within 30%)",
                np.std(boots), se, atol=0.0, rtol=0.3)

    # 3. Pick the operating threshold on VALIDATION data (the highest one reaching the target
    # recall), then report it once on test. Tuning it on test would make the test score optimistic.
    _, _, _, rec_val, thr_val = curves(y_val, s_val)
    # The validation set is small, so the recall reached on test can land a little off target:
    # that is the sampling noise the bootstrap above measures, and why test sets need size.
    threshold = thr_val[np.argmax(rec_val >= TARGET_RECALL)]
    recall_at = lambda t: prf(confusion(y_val, (s_val >= t).astype(int)))[1]  # noqa: E731
    above = thr_val[thr_val > threshold]
    check.true("threshold is the highest one reaching the target recall on validation",
               recall_at(threshold) >= TARGET_RECALL and (len(above) == 0 or recall_at(above.min()) < TARGET_RECALL),
               f"recall {recall_at(threshold):.3f} at {threshold:.3f}; "
               + (f"{recall_at(above.min()):.3f} at the next threshold up {above.min():.3f}" if len(above) else
                  "no higher threshold"))
    p_te, r_te, _ = prf(confusion(y_te, (s_te >= threshold).astype(int)))
    print(f"threshold {threshold:.3f} chosen on validation for recall >= {TARGET_RECALL}: "
          f"test recall {r_te:.3f}, precision {p_te:.3f}")

    # 4. Cross-validation: every row is tested once, and the spread across folds shows how much
    # one split's score can be luck.
    kf = KFold(FOLDS)
    scores = [model().fit(x_dev[a], y_dev[a]).score(x_dev[b], y_dev[b]) for a, b in kf.split(x_dev)]
    check.close(f"{FOLDS}-fold CV accuracies vs cross_val_score", np.array(scores),
                cross_val_score(model(), x_dev, y_dev, cv=kf), atol=1e-12)
    fold = stratified_folds(y_dev, FOLDS, rng)
    # Dealt round-robin, each class spreads as evenly as it can: per class, fold counts differ by <= 1.
    per_class = np.array([np.bincount(fold[y_dev == c], minlength=FOLDS) for c in (0, 1)])  # (2, FOLDS)
    check.true("stratified folds: every class is split as evenly as possible (counts differ by <= 1)",
               (per_class.max(1) - per_class.min(1) <= 1).all(),
               f"benign per fold {per_class[0].tolist()}, malignant per fold {per_class[1].tolist()}")
    strat = [model().fit(x_dev[fold != f], y_dev[fold != f]).score(x_dev[fold == f], y_dev[fold == f])
             for f in range(FOLDS)]
    print(f"{FOLDS}-fold CV accuracy {np.mean(scores):.3f} +- {np.std(scores):.3f} | stratified "
          f"{np.mean(strat):.3f} +- {np.std(strat):.3f} | held-out test "
          f"{np.mean((s_te >= 0.5) == y_te):.3f} (binomial std {np.sqrt(0.25 / len(y_te)):.3f} at most)")

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.5))
    ax1.plot(fpr, tpr, label=f"model, AUC {auc:.3f}")
    ax1.plot([0, 1], [0, 1], "--", c="gray", label="random, AUC 0.5")
    ax1.plot(1 - m[0, 0] / m[0].sum(), m[1, 1] / m[1].sum(), "ko", label="threshold 0.5")
    ax1.set(xlabel="false positive rate (1 - specificity)", ylabel="true positive rate (recall)",
            title="ROC curve (test set)")
    ax1.legend(loc="lower right")
    # steps-pre: precision P_n holds on (R_{n-1}, R_n], exactly the area that AP sums.
    ax2.plot(np.r_[0, recall], np.r_[1, precision], drawstyle="steps-pre", label=f"model, AP {ap:.3f}")
    ax2.axhline(y_te.mean(), ls="--", c="gray", label=f"random, AP = prevalence {y_te.mean():.2f}")
    ax2.plot(r_te, p_te, "rs", label=f"threshold {threshold:.2f} (from validation)")
    ax2.set(xlabel="recall", ylabel="precision", title="precision-recall curve (test set)", ylim=(0, 1.05))
    ax2.legend(loc="lower left")
    plot.save(fig, run, "curves.png")

    # 5. Is the evaluation set itself trustworthy? Three ways it lies, each on generated data.
    dup, drift, shift = duplicate_leakage(run, rng), time_drift(run, rng), covariate_shift(run, rng)
    fig, ax = plt.subplots(figsize=(9, 4.2))
    bars = [("duplicates:\nrandom split", dup["random"]), ("group split", dup["group"]),
            ("new items", dup["new"]), ("drift:\nrandom folds", drift["random"]),
            ("forward\nchaining", drift["forward"]), ("the future", drift["future"]),
            ("shift:\nevaluation", shift["acc"]["evaluation"]), ("production", shift["acc"]["production, shifted"])]
    ax.bar(range(len(bars)), [v for _, v in bars], color=["C3", "C0", "k"] * 2 + ["C0", "k"])
    ax.set_xticks(range(len(bars)), [k for k, _ in bars], fontsize=8)
    ax.set(ylim=(0.4, 1.0), ylabel="accuracy",
           title="red: leaky estimate; blue: honest estimate; black: what deployment gets")
    plot.save(fig, run, "trustworthy.png")
    return cli.finish(run, {"dup_acc": {k: float(v) for k, v in dup.items()},
                            "drift_acc": {k: float(v) for k, v in drift.items()},
                            "adversarial_auc": {"same": shift["auc_same"], "shifted": shift["auc_shift"]},
                            "roc_auc": auc, "average_precision": ap, "cv_acc_mean": float(np.mean(scores)),
                            "cv_acc_std": float(np.std(scores)), "auc_ci": [float(lo), float(hi)]}, answers={
        "duplicates": ("random split" if abs(dup["random"] - dup["new"]) < abs(dup["group"] - dup["new"])
                       else "group split",
                       f"1-NN accuracy: random split {dup['random']:.3f}, group split {dup['group']:.3f}, "
                       f"new items {dup['new']:.3f} (trustworthy.png)"),
        "drift": ("random folds" if abs(drift["random"] - drift["future"]) < abs(drift["forward"] - drift["future"])
                  else "forward chaining",
                  f"15-NN accuracy: random folds {drift['random']:.3f}, forward chaining {drift['forward']:.3f}, "
                  f"the future {drift['future']:.3f} (trustworthy.png)"),
    })


# Predict, then run: answer in your copy (`python -m dlcourse exercise 02.15`) before running it;
# `python -m dlcourse check 02.15` compares your answers with what the run measures.
# PREDICT duplicates (random split / group split): the data holds near-duplicate copies of items; which cross-validation comes closer to the accuracy on new items?
# ANSWER duplicates:
# PREDICT drift (random folds / forward chaining): on a drifting time-ordered stream, which validation comes closer to the accuracy on the future?
# ANSWER drift:


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
