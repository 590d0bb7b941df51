"""15 - Model evaluation: metrics, ROC/PR, cross-validation (phase 02, week 3)

Goal: compute the confusion matrix, precision/recall/F1, ROC-AUC, the PR curve and k-fold
      cross-validation from scratch, equal to sklearn.metrics, and build an evaluation you can trust.
Run:  python phase02-math/15-model-evaluation.py            (all 569 tumours; about 2 s on a 2-core CPU)
      python phase02-math/15-model-evaluation.py --quick    (seconds, offline, used by the tests)
Expect: every metric equals sklearn's (max diff ~1e-16), on raw and on tied scores; test ROC-AUC
      0.851 with a bootstrap 95% interval 0.791-0.904; 5-fold CV accuracy 0.796 +- 0.068 (seed 0,
      full); figure curves.png.
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
from sklearn.model_selection import KFold, cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from dlcourse import check, data, plot
import matplotlib.pyplot as plt

# A deliberately imperfect model: four weak features, so the curves have something to show.
FEATURES = ("mean texture", "mean smoothness", "mean symmetry", "mean fractal dimension")
FOLDS = 5              # cross-validation folds
TARGET_RECALL = 0.90   # operating point: catch at least this share of malignant tumours
BOOTSTRAP = 1000       # resamples of the test set for a confidence interval of the AUC


def confusion(y, y_hat):
    """2x2 counts [[TN, FP], [FN, TP]]: rows = truth, columns = prediction (sklearn's layout)."""
    m = np.zeros((2, 2), dtype=int)
    np.add.at(m, (y, y_hat), 1)
    return m


def prf(m):
    """precision = TP / (TP + FP): of the alarms, how many were real.
    recall    = TP / (TP + FN): of the real cases, how many we caught.
    F1 = harmonic mean 2PR / (P + R): high only when both are."""
    (tn, fp), (fn, tp) = m
    p, r = tp / (tp + fp), tp / (tp + fn)
    return p, r, 2 * p * r / (p + r)


def curves(y, score):
    """Sweep the threshold from +inf down through every distinct score.

    After sorting by score (descending), the cumulative sums of y and 1 - y give TP and FP for
    'predict positive for the top i'. Only the last row of each group of equal scores is a real
    threshold. TPR = TP/P, FPR = FP/N (ROC); precision = TP/(TP+FP), recall = TPR (PR).
    """
    order = np.argsort(-score, kind="stable")
    s, yy = score[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]        # end of each tie group
    tp, fp = np.cumsum(yy)[last], np.cumsum(1 - yy)[last]
    tpr = np.r_[0, tp / yy.sum()]
    fpr = np.r_[0, fp / (1 - yy).sum()]
    precision = tp / (tp + fp)
    return fpr, tpr, precision, tpr[1:], s[last]


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
    return cli.finish(run, {"roc_auc": auc, "average_precision": ap, "cv_acc_mean": float(np.mean(scores)),
                            "cv_acc_std": float(np.std(scores)), "auc_ci": [float(lo), float(hi)]})


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
