"""12 - Decision trees, random forests, gradient boosting (phase 02, week 3)

Goal: grow a decision tree from scratch (gini or entropy), bag trees into a random forest,
      boost trees on residuals, and match scikit-learn split for split.
Run:  python phase02-math/12-trees-and-ensembles.py            (569 + 442 rows; about 4 s on a 2-core CPU)
      python phase02-math/12-trees-and-ensembles.py --quick    (seconds, offline, used by the tests)
Expect: our split search finds splits exactly as good as DecisionTreeClassifier's at every node
      (diff ~1e-16); boosting's training predictions equal GradientBoostingRegressor's (~1e-13);
      test accuracy tree 0.930, forest 0.947 (sklearn's 0.953), boosting test R^2 0.334 (sklearn's
      0.333) (seed 0, full); figure regions.png.
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked


def parse_args(argv=None):
    return cli.parser(__doc__).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import numpy as np
from sklearn.datasets import load_breast_cancer, load_diabetes, make_moons
from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeClassifier

from dlcourse import check, data, plot
import matplotlib.pyplot as plt

DEPTH = 4            # depth of the single trees we compare with sklearn
FOREST_DEPTH = 6     # forest trees are deeper: averaging cancels their variance
BOOST_DEPTH = 2      # boosting uses weak, shallow trees and many rounds
BOOST_LR = 0.1       # shrinkage: each tree corrects only a tenth of what it could
BOOST_MIN_LEAF = 5   # rows per boosting leaf at least (also keeps ties between features rare)
MIN_GAP = 1e-7       # two feature values closer than this are not split between (as in sklearn)
BOOTSTRAP_DRAWS = 200  # bootstrap samples drawn to check the sampler's statistics
SIGMAS = 5           # statistical checks allow 5 standard errors (fails ~1 in 1.7 million)
MCNEMAR_SIGMAS = 4   # two forests' accuracies may differ by this many std of McNemar's statistic


def impurity(stats, n, criterion):
    """Node impurity from summary statistics, vectorised over candidate splits.

    gini:    1 - sum_k p_k^2                 (chance two random samples disagree)
    entropy: -sum_k p_k log2 p_k             (bits to encode the label)
    mse:     E[y^2] - E[y]^2                 (variance; stats = [sum y, sum y^2])
    """
    n = np.maximum(n, 1)[..., None]
    if criterion == "mse":
        mean, mean_sq = stats[..., 0] / n[..., 0], stats[..., 1] / n[..., 0]
        return mean_sq - mean ** 2
    p = stats / n
    if criterion == "gini":
        return 1.0 - (p ** 2).sum(-1)
    return -(p * np.log2(np.where(p > 0, p, 1.0))).sum(-1)


class Tree:
    """A binary tree of nodes {feature, threshold, left, right} with a value at every node.

    Greedy growth: at each node try every feature and every threshold between consecutive
    sorted values, keep the one with the lowest weighted child impurity
        (n_L I(L) + n_R I(R)) / n,
    recurse until the depth limit or a pure node. Sorting once per feature and taking
    cumulative sums scores all thresholds of that feature in one vectorised pass.
    """

    def __init__(self, criterion="gini", max_depth=3, min_leaf=1, max_features=None, rng=None):
        self.criterion, self.max_depth, self.min_leaf = criterion, max_depth, min_leaf
        self.max_features, self.rng = max_features, rng

    def fit(self, x, y, n_classes=None):
        self.n_total = len(x)
        self.importance = np.zeros(x.shape[1])
        self.root = self._grow(x, self.stats(y, n_classes), 0)
        self.total_decrease = self.importance.sum()       # kept for the bookkeeping check
        self.importance /= max(self.importance.sum(), 1e-300)
        return self

    def stats(self, y, n_classes=None):
        """Per-row statistics that add up over a node: one-hot labels, or [y, y^2]."""
        if self.criterion == "mse":
            return np.stack([y, y * y], 1)                    # (N, 2)
        return np.eye(n_classes)[y]                           # (N, K)

    def best_split(self, x, stats, features):
        """(weighted child impurity, feature, threshold) of the best split of these rows."""
        n, total = len(x), stats.sum(0)
        best = (np.inf, None, None)
        for j in features:
            order = np.argsort(x[:, j], kind="stable")
            xs = x[order, j]
            left = np.cumsum(stats[order], 0)[:-1]            # (N-1, S) stats of the first i+1 rows
            n_left = np.arange(1, n)
            score = (n_left * impurity(left, n_left, self.criterion)
                     + (n - n_left) * impurity(total - left, n - n_left, self.criterion)) / n
            score[xs[1:] - xs[:-1] <= MIN_GAP] = np.inf        # no threshold between equal values
            score[(n_left < self.min_leaf) | (n - n_left < self.min_leaf)] = np.inf
            i = int(np.argmin(score)) if n > 1 else 0
            if n > 1 and np.isfinite(score[i]) and score[i] < best[0]:  # strict: first feature wins a tie
                best = (float(score[i]), j, (xs[i] + xs[i + 1]) / 2)
        return best

    def _grow(self, x, stats, depth):
        n, total = len(x), stats.sum(0)
        imp = float(impurity(total, np.array(n), self.criterion))
        value = total[0] / n if self.criterion == "mse" else total / n
        node = {"value": value, "n": n}            # the mean target, or class frequencies
        if depth >= self.max_depth or n < 2 or imp <= 1e-12:
            return node
        features = np.arange(x.shape[1])
        if self.max_features:                     # random forest: a fresh random subset per node
            features = self.rng.choice(features, self.max_features, replace=False)
        child_imp, j, thr = self.best_split(x, stats, features)
        if j is None:                             # every feature is constant here
            return node
        self.importance[j] += n * (imp - child_imp) / self.n_total  # impurity decrease, weighted
        go_left = x[:, j] <= thr
        node.update(feature=j, threshold=thr,
                    left=self._grow(x[go_left], stats[go_left], depth + 1),
                    right=self._grow(x[~go_left], stats[~go_left], depth + 1))
        return node

    def leaves(self, x):
        """The leaf node each row lands in."""
        out = []
        for row in x:
            node = self.root
            while "feature" in node:
                node = node["left"] if row[node["feature"]] <= node["threshold"] else node["right"]
            out.append(node)
        return out

    def value(self, x):
        return np.array([leaf["value"] for leaf in self.leaves(x)])  # (N, K) or (N,)


def replay(tree, ref, x, y):
    """At every split node of a fitted sklearn tree, run our split search on the rows sklearn
    sent there. Returns (ours, sklearn's) weighted child impurity, node by node."""
    t = ref.tree_
    in_node = ref.decision_path(x).toarray().astype(bool)            # (N, n_nodes)
    stats = tree.stats(y, ref.n_classes_)
    ours, theirs = [], []
    for k in np.flatnonzero(t.children_left >= 0):                    # internal nodes
        rows = in_node[:, k]
        ours.append(tree.best_split(x[rows], stats[rows], range(x.shape[1]))[0])
        left, right = t.children_left[k], t.children_right[k]
        theirs.append((t.n_node_samples[left] * t.impurity[left]
                       + t.n_node_samples[right] * t.impurity[right]) / t.n_node_samples[k])
    return np.array(ours), np.array(theirs)


def check_bookkeeping(tree, x, y, k, label):
    """Two exact identities of a fitted classification tree, on its own training rows:
    each leaf predicts the class frequencies of the rows that land in it, and the impurity
    decreases credited to the features add up to root impurity - sum_leaves (n_leaf / N) I(leaf)
    (the decreases telescope down the tree), which is what makes importances comparable."""
    leaf_of = np.array([id(leaf) for leaf in tree.leaves(x)])   # (N,) which leaf each row reaches
    onehot = np.eye(k)[y]                                        # (N, K)
    freq = np.array([onehot[leaf_of == i].mean(0) for i in leaf_of])  # (N, K) label mix of its leaf
    check.close(f"{label}: leaf values = class frequencies of the training rows in each leaf",
                tree.value(x), freq, atol=1e-12)
    root = impurity(onehot.sum(0), np.array(len(y)), tree.criterion)
    leaf_imp = impurity(freq, np.ones(len(y)), tree.criterion)  # each row carries 1/N of its leaf
    check.close(f"{label}: total impurity decrease = root impurity - weighted leaf impurity",
                tree.total_decrease, root - leaf_imp.mean(), atol=1e-12)


def bootstrap(n, rng):
    """n row indices drawn uniformly WITH replacement: some rows twice or more, about
    (1 - 1/n)^n ~ e^-1 ~ 37% not at all (the 'out-of-bag' rows)."""
    return rng.integers(0, n, n)


def check_bootstrap(n, rng):
    """Row i is left out with probability q = (1 - 1/n)^n, rows i and j together with
    r = (1 - 2/n)^n, so the number left out has mean n q and variance n q (1 - q) + n (n-1) (r - q^2)."""
    draws = [bootstrap(n, rng) for _ in range(BOOTSTRAP_DRAWS)]
    out = np.array([n - len(np.unique(d)) for d in draws])      # rows left out, per draw
    q, r = (1 - 1 / n) ** n, (1 - 2 / n) ** n
    se = np.sqrt((n * q * (1 - q) + n * (n - 1) * (r - q * q)) / BOOTSTRAP_DRAWS)
    check.close(f"bootstrap: mean rows left out of {n} vs n (1 - 1/n)^n = {n * q:.1f} "
                f"({SIGMAS} std errors)", out.mean(), n * q, atol=SIGMAS * se)
    check.equal(f"bootstrap: every one of the {n} rows can be drawn", len(np.unique(draws)), n)


def forest_predict_proba(x_tr, y_tr, x, n_trees, rng):
    """Random forest = bagging + feature subsampling. Each tree sees a bootstrap sample
    (N rows drawn with replacement) and sqrt(D) random features per split, so the trees make
    different mistakes; averaging B such trees divides the variance part of their error by up
    to B, while each tree stays a low-bias, deep learner."""
    k = int(np.sqrt(x_tr.shape[1]))
    proba = 0.0
    for _ in range(n_trees):
        rows = bootstrap(len(x_tr), rng)
        tree = Tree("gini", FOREST_DEPTH, max_features=k, rng=rng).fit(x_tr[rows], y_tr[rows], 2)
        proba = proba + tree.value(x)
    return proba / n_trees


def boost(x_tr, y_tr, x_eval, rounds):
    """Gradient boosting with squared loss L = 1/2 (y - F)^2. The model is a sum
        F_0 = mean(y),   F_m(x) = F_{m-1}(x) + lr * h_m(x),
    where each small regression tree h_m is fit to the negative gradient -dL/dF = y - F,
    i.e. to the residuals of the ensemble so far. Each round removes part of the remaining
    bias; the learning rate and the shallow depth keep any one tree from overfitting.
    (For log-loss the residual becomes y - sigmoid(F) and each leaf value is set by a Newton
    step: that is GradientBoostingClassifier.) Returns F on the training rows and on x_eval.
    """
    f_tr = np.full(len(y_tr), y_tr.mean())
    f_eval = np.full(len(x_eval), y_tr.mean())
    for _ in range(rounds):
        tree = Tree("mse", BOOST_DEPTH, min_leaf=BOOST_MIN_LEAF).fit(x_tr, y_tr - f_tr)
        f_tr += BOOST_LR * tree.value(x_tr)
        f_eval += BOOST_LR * tree.value(x_eval)
    return f_tr, f_eval


def main(args) -> dict:
    run = cli.start(args, __file__, use_torch=False)
    rng = np.random.default_rng(run.seed)
    n = 250 if run.quick else 569
    n_trees, rounds = (10, 20) if run.quick else (100, 100)
    d = load_breast_cancer()
    data.announce("scikit-learn breast cancer (Wisconsin diagnostic), for the trees and the forest",
                  kind="bundled", detail=f"{n} of {len(d.data)} tumours, 30 features")
    # sklearn's trees work on float32 copies of X; round ours the same way so both see equal numbers.
    x = d.data[:n].astype(np.float32).astype(np.float64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, d.target[:n], test_size=0.3,
                                              stratify=d.target[:n], random_state=run.seed)

    # 1. One tree, both criteria, against sklearn at equal depth.
    # Ties: worst radius, worst perimeter and worst area sort the tumours almost identically, so
    # two features often split a node into exactly the same two groups. We take the first such
    # feature; sklearn tries features in a random order. The trees can then differ in which
    # (equivalent) feature they name, so we compare the split *search* itself: at every node of
    # sklearn's tree, our search on the rows sklearn sent there must find a split exactly as good.
    for criterion in ("gini", "entropy"):
        ours = Tree(criterion, DEPTH).fit(x_tr, y_tr, 2)
        ref = DecisionTreeClassifier(criterion=criterion, max_depth=DEPTH, random_state=run.seed)
        ref.fit(x_tr, y_tr)
        mine, theirs = replay(ours, ref, x_tr, y_tr)
        check.close(f"{criterion}: best split at each of sklearn's {len(mine)} nodes, ours vs "
                    "DecisionTreeClassifier", mine, theirs, atol=1e-12)
        agree = np.mean(ours.value(x_te).argmax(1) == ref.predict(x_te))
        check.greater(f"{criterion}: test predictions agree with DecisionTreeClassifier on >= 85%",
                      agree, 0.85, strict=False)
        check_bookkeeping(ours, x_tr, y_tr, 2, criterion)
    acc_tree = np.mean(ours.value(x_te).argmax(1) == y_te)
    for who, imp in (("ours", ours.importance), ("sklearn", ref.feature_importances_)):
        top = np.argsort(-imp)[:3]
        print(f"top features ({who}):", ", ".join(f"{d.feature_names[j]} {imp[j]:.2f}" for j in top))

    # 2. Random forest: same recipe as sklearn's, different random draws -> the sampler is checked
    # against its statistics, and the accuracies against each other with McNemar's test: of the
    # test rows where the two forests disagree, each is right on about half if they are equally
    # good, so (ours right) - (sklearn right) has mean 0 and std sqrt(number of disagreements).
    check_bootstrap(len(x_tr), rng)
    proba_rf = forest_predict_proba(x_tr, y_tr, x_te, n_trees, rng)
    check.close("forest: averaged class probabilities sum to 1 on every row", proba_rf.sum(1),
                np.ones(len(x_te)), atol=1e-12)
    acc_rf = np.mean(proba_rf.argmax(1) == y_te)
    ref_rf = RandomForestClassifier(n_trees, max_depth=FOREST_DEPTH, random_state=run.seed).fit(x_tr, y_tr)
    right_ours, right_ref = proba_rf.argmax(1) == y_te, ref_rf.predict(x_te) == y_te
    b, c = np.sum(right_ours & ~right_ref), np.sum(~right_ours & right_ref)
    check.less(f"forest vs RandomForestClassifier: |{b} - {c}| test rows (only one forest right) "
               f"<= {MCNEMAR_SIGMAS} sqrt({b} + {c})", abs(b - c), MCNEMAR_SIGMAS * np.sqrt(b + c),
               strict=False)

    # 3. Gradient boosting regression on the diabetes data: deterministic, so the predictions
    # themselves must match. Leaves of at least BOOST_MIN_LEAF rows keep ties rare; a tie that is
    # left almost always just changes which feature names a split that cuts the training rows the
    # same way, so the training predictions are the strict comparison and the test ones are printed.
    dia = load_diabetes()
    xd = dia.data[:n].astype(np.float32).astype(np.float64)
    data.announce("scikit-learn diabetes, for gradient boosting", kind="bundled",
                  detail=f"{len(xd)} of {len(dia.data)} patients, 10 features, target = disease progression")
    xd_tr, xd_te, yd_tr, yd_te = train_test_split(xd, dia.target[:n], test_size=0.3, random_state=run.seed)
    # Evaluate on test rows AND the training rows: the prediction path must rebuild f_tr exactly.
    f_tr, f_eval = boost(xd_tr, yd_tr, np.vstack([xd_te, xd_tr]), rounds)
    f_te = f_eval[:len(xd_te)]
    check.close("boosting: predicting the training rows replays the training sum F_m", f_eval[len(xd_te):],
                f_tr, atol=1e-9)
    ref_gb = GradientBoostingRegressor(n_estimators=rounds, learning_rate=BOOST_LR, max_depth=BOOST_DEPTH,
                                       min_samples_leaf=BOOST_MIN_LEAF, random_state=run.seed)
    ref_gb.fit(xd_tr, yd_tr)
    check.close("boosting train predictions vs GradientBoostingRegressor", f_tr, ref_gb.predict(xd_tr),
                atol=1e-8)
    r2_gb = 1 - np.sum((yd_te - f_te) ** 2) / np.sum((yd_te - yd_te.mean()) ** 2)
    check.close("R^2 by hand vs sklearn r2_score", r2_gb, r2_score(yd_te, f_te), atol=1e-12)
    test_diff = np.abs(f_te - ref_gb.predict(xd_te)).max()
    print(f"boosting test predictions: max |diff| vs sklearn {test_diff:.2g}; "
          f"test R^2 ours {r2_gb:.3f}, sklearn {ref_gb.score(xd_te, yd_te):.3f}")
    check.greater("boosting R^2 beats predicting the mean (R^2 = 0)", r2_gb, 0.0)
    print(f"test accuracy (tumours): tree(depth {DEPTH}) {acc_tree:.3f} | forest({n_trees}) {acc_rf:.3f} "
          f"(sklearn {ref_rf.score(x_te, y_te):.3f})")

    # 4. Decision regions on 2-D moons: a shallow tree is boxy, a deep one chases noise,
    # ensembles smooth the staircase.
    xm, ym = make_moons(150 if run.quick else 400, noise=0.3, random_state=run.seed)
    data.announce("two moons (scikit-learn make_moons), for the decision-region figure", kind="generated",
                  detail=f"{len(xm)} points in 2-D")
    g1, g2 = np.meshgrid(np.linspace(-2, 3, 80), np.linspace(-1.6, 2.1, 80))
    grid = np.c_[g1.ravel(), g2.ravel()]                                      # (6400, 2)
    panels = [("tree depth 2", Tree("gini", 2).fit(xm, ym, 2).value(grid)[:, 1]),
              ("tree depth 12", Tree("gini", 12).fit(xm, ym, 2).value(grid)[:, 1]),
              (f"forest of {n_trees}", forest_predict_proba(xm, ym, grid, n_trees, rng)[:, 1]),
              (f"boosting, {rounds} rounds", np.clip(boost(xm, ym.astype(float), grid, rounds)[1], 0, 1))]
    fig, axes = plt.subplots(1, 4, figsize=(17, 4))
    for ax, (title, p) in zip(axes, panels):
        ax.contourf(g1, g2, p.reshape(g1.shape), levels=np.linspace(0, 1, 11), cmap="coolwarm", alpha=0.6)
        ax.scatter(xm[:, 0], xm[:, 1], c=ym, cmap="coolwarm", s=8, edgecolors="k", linewidths=0.3)
        ax.set(title=title, xticks=[], yticks=[])
    plot.save(fig, run, "regions.png")
    return cli.finish(run, {"tree_acc": float(acc_tree), "forest_acc": float(acc_rf),
                            "boost_r2": float(r2_gb)})


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
