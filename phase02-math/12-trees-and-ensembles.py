"""12 - Decision trees, random forests, gradient boosting, XGBoost, pruning (phase 02, week 3)

Goal: grow a decision tree from scratch (gini or entropy), bag trees into a random forest,
      boost trees on residuals and match scikit-learn split for split; then rebuild XGBoost's
      trees number by number from its second-order formulas (leaf -G/(H + lambda), split gain,
      missing-value direction), measure what each of its additions (and LightGBM) does, watch
      a tree overfit with depth, and prune it by cost complexity chosen on validation.
Run:  python phase02-math/12-trees-and-ensembles.py            (569 + 442 rows; about 16 s on a busy 2-core CPU)
      python phase02-math/12-trees-and-ensembles.py --quick    (seconds, offline, used by the tests)
Expect: our split search finds splits exactly as good as DecisionTreeClassifier's at every node
      (diff ~1e-16); boosting's training predictions equal GradientBoostingRegressor's (~1e-13) and
      XGBRegressor's with lambda 0 (~1e-7 relative: float32); XGBoost's covers, leaf values and gains
      equal ours to float32 precision, and our sparsity-aware search finds every one of its splits;
      our weakest-link pruning path equals cost_complexity_pruning_path (~1e-17); training accuracy
      rises to 1 with depth (6) while validation peaks earlier (4); figures regions.png and
      tree_depth_pruning.png (the pruned tree, the depth sweep, the pruning path).
      Seed 0, full: test accuracy tree 0.930, forest 0.947 (sklearn's 0.953), boosting test R^2 0.334
      (sklearn's 0.333); booster chosen on validation log-loss (LightGBM) test accuracy 0.956;
      pruned tree 11 leaves (full 14), test 0.939. The one-by-one XGBoost table's differences are
      a few validation rows (noise at 114 rows); its fit times are single-threaded milliseconds.
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked


def parse_args(argv=None):
    return cli.parser(__doc__).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import time

import numpy as np
from sklearn.datasets import load_breast_cancer, load_diabetes, make_moons
from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor, RandomForestClassifier
from sklearn.metrics import log_loss, r2_score
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeClassifier, plot_tree
import lightgbm as lgb
import xgboost as xgb

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
XGB_DEPTH = 3        # depth of the XGBoost trees (replayed node by node, and in the comparisons)
XGB_LAMBDA = 2.0     # L2 penalty on leaf weights; != 1 and non-zero so a dropped lambda shows
XGB_ETA = 0.3        # XGBoost's shrinkage (its default); leaf values in its dump include it
XGB_MIN_CHILD = 1.0  # min_child_weight: a child needs this much hessian (sum of p(1-p)), not rows
XGB_REPLAY = 3       # trees of XGBoost replayed by hand (tree 1 on has non-constant hessians)
MISSING_FRAC = 0.1   # share of feature values blanked (NaN) to show the learned default direction
F32_RTOL = 1e-5      # XGBoost computes in float32 (eps 6e-8): its predictions, covers and leaves agree
                     # with ours to ~1e-6 relative; a gain is a difference of terms as large as the
                     # root's, so it agrees to ~1e-7 x the largest root gain (atol = this x that)
ROUNDS_XGB = 200     # boosting rounds in the one-by-one comparison (full run; --quick below)
SPLIT_VAL = 0.2      # validation share, and the same again for test, in the tuning sections
MAX_DEPTHS = range(1, 13)   # depth sweep of the single tree


def impurity(stats, n, criterion):
    """Node impurity from summary statistics, vectorised over candidate splits.

    gini:    1 - sum_k p_k^2                 (chance two random samples disagree)
    entropy: -sum_k p_k log2 p_k             (bits to encode the label)
    mse:     E[y^2] - E[y]^2                 (variance; stats = [sum y, sum y^2])
    """
    # EXERCISE impurity: p = stats / n (n clipped to >= 1); gini 1 - sum p^2, entropy -sum p log2 p (0 log 0 = 0), mse from [sum y, sum y^2]: E[y^2] - E[y]^2
    n = np.maximum(n, 1)[..., None]
    if criterion == "mse":
        mean, mean_sq = stats[..., 0] / n[..., 0], stats[..., 1] / n[..., 0]
        return mean_sq - mean ** 2
    p = stats / n
    if criterion == "gini":
        return 1.0 - (p ** 2).sum(-1)
    return -(p * np.log2(np.where(p > 0, p, 1.0))).sum(-1)
    # END EXERCISE


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


def value_at_depth(tree, x, depth):
    """Predictions of `tree` cut back to `depth`: stop at the node reached after `depth` splits."""
    out = []
    for row in x:
        node, k = tree.root, 0
        while "feature" in node and k < depth:
            node = node["left"] if row[node["feature"]] <= node["threshold"] else node["right"]
            k += 1
        out.append(node["value"])
    return np.array(out)                                      # (N, K)


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
    return out.mean() / n                                     # the share of rows left out


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
    # EXERCISE boost: start both F at mean(y_tr); each round fit Tree('mse', BOOST_DEPTH, min_leaf=BOOST_MIN_LEAF) to the residuals y - F and add BOOST_LR times its values on both sets
    f_tr = np.full(len(y_tr), y_tr.mean())
    f_eval = np.full(len(x_eval), y_tr.mean())
    for _ in range(rounds):
        tree = Tree("mse", BOOST_DEPTH, min_leaf=BOOST_MIN_LEAF).fit(x_tr, y_tr - f_tr)
        f_tr += BOOST_LR * tree.value(x_tr)
        f_eval += BOOST_LR * tree.value(x_eval)
    return f_tr, f_eval
    # END EXERCISE


def newton_grad_hess(y, margin):
    """Log-loss L = -y log p - (1-y) log(1-p), p = sigmoid(F), differentiated in the margin F:
    g = dL/dF = p - y,   h = d2L/dF2 = p (1 - p)."""
    p = 1 / (1 + np.exp(-margin))
    return p - y, p * (1 - p)


def leaf_weight(g_sum, h_sum, lam):
    """XGBoost's leaf: minimise sum_i [g_i w + 1/2 h_i w^2] + 1/2 lam w^2 over one number w
    (second-order Taylor of the loss around the current F, plus an L2 penalty) -> w* = -G / (H + lam).
    With h = 1 and lam = 0 it is the mean residual, our squared-loss booster's leaf."""
    return -g_sum / (h_sum + lam)


def split_gain(g_left, h_left, g_sum, h_sum, lam, gamma=0.0):
    """Loss decrease of a split, with w* put back in: a leaf's best loss is -1/2 G^2 / (H + lam), so
        gain = 1/2 [G_L^2/(H_L+lam) + G_R^2/(H_R+lam) - G^2/(H+lam)] - gamma,
    gamma being the price of one more leaf. (XGBoost's dump prints twice this, before gamma.)"""
    # EXERCISE split_gain: right child = node minus left; gain = 1/2 [G_L^2/(H_L+lam) + G_R^2/(H_R+lam) - G^2/(H+lam)] - gamma
    g_right, h_right = g_sum - g_left, h_sum - h_left
    return 0.5 * (g_left ** 2 / (h_left + lam) + g_right ** 2 / (h_right + lam)
                  - g_sum ** 2 / (h_sum + lam)) - gamma
    # END EXERCISE


def best_xgb_gain(x, g, h, lam, min_child):
    """Exact greedy, sparsity-aware split search (Chen & Guestrin 2016, algorithm 3): for each
    feature, sort the rows that HAVE a value, score every threshold between distinct values with
    the rows missing it sent right, then sent left, and keep the best. Sending the present rows all
    one way and the missing ones the other is a candidate too. Returns the best gain."""
    g_sum, h_sum = g.sum(), h.sum()
    best = -np.inf
    for j in range(x.shape[1]):
        present = ~np.isnan(x[:, j])
        order = np.argsort(x[present, j], kind="stable")
        xs = x[present, j][order]
        g_left = np.concatenate([[0.0], np.cumsum(g[present][order])])   # (P+1,) first i present rows left
        h_left = np.concatenate([[0.0], np.cumsum(h[present][order])])
        cut = np.ones(len(xs) + 1, bool)
        cut[1:-1] = xs[1:] > xs[:-1]                  # no threshold between equal values
        g_miss, h_miss = g_sum - g_left[-1], h_sum - h_left[-1]
        for gl, hl in ((g_left, h_left), (g_left + g_miss, h_left + h_miss)):   # missing right, left
            gain = split_gain(gl, hl, g_sum, h_sum, lam)
            gain[~cut | (hl < min_child) | (h_sum - hl < min_child)] = -np.inf
            best = max(best, float(gain.max()))
    return best


def replay_xgb(model, x, y, lam, eta, min_child):
    """Rebuild every number of a fitted XGBoost classifier's dump from the lesson's formulas.
    For tree t: F = sum of the earlier trees' leaves (starting at logit(base_score) = 0), g and h
    from F; the rows in each node come from pred_leaf. Returns a dict of (ours, xgboost's) arrays."""
    booster = model.get_booster()
    df = booster.trees_to_dataframe()
    leaf_of = booster.predict(xgb.DMatrix(x), pred_leaf=True).astype(int)   # (N, trees) leaf id per row
    out = {k: ([], []) for k in ("gain", "best", "leaf", "cover")}
    margin = np.zeros(len(y))
    for t in range(leaf_of.shape[1]):
        g, h = newton_grad_hess(y, margin)
        nodes = df[df.Tree == t].set_index("Node")
        rows = {}
        for k in sorted(nodes.index, reverse=True):    # children have larger ids: leaves first
            r = nodes.loc[k]
            rows[k] = (leaf_of[:, t] == k) if r.Feature == "Leaf" else (
                rows[int(r.Yes.split("-")[1])] | rows[int(r.No.split("-")[1])])
        for k in nodes.index:
            r, m = nodes.loc[k], rows[k]
            if r.Feature == "Leaf":
                out["leaf"][0].append(eta * leaf_weight(g[m].sum(), h[m].sum(), lam))
                out["leaf"][1].append(r.Gain)
                margin[m] += r.Gain                    # XGBoost's own value: F stays on its track
            else:
                yes = rows[int(r.Yes.split("-")[1])]
                out["gain"][0].append(2 * split_gain(g[yes].sum(), h[yes].sum(), g[m].sum(), h[m].sum(), lam))
                out["gain"][1].append(r.Gain)
                out["best"][0].append(2 * best_xgb_gain(x[m], g[m], h[m], lam, min_child))
                out["best"][1].append(r.Gain)
            out["cover"][0].append(h[m].sum())
            out["cover"][1].append(r.Cover)
    out["margin"] = (margin, booster.predict(xgb.DMatrix(x), output_margin=True))
    return {k: (np.array(a), np.array(b)) for k, (a, b) in out.items()}


def weakest_link_path(tree):
    """Minimal cost-complexity pruning (Breiman et al. 1984) on a fitted sklearn tree_.
    R(t) = (weight of t / total) x impurity(t) is the cost of node t as a leaf; R(T_t) the summed
    cost of the leaves below it. Cutting T_t back to t costs R(t) - R(T_t) and saves |T_t| - 1
    leaves, so it pays once alpha >= g(t) = (R(t) - R(T_t)) / (|T_t| - 1). Repeatedly cut the
    weakest link (smallest g). Returns the alphas at which the tree changes and R(T) after each."""
    left, right = tree.children_left, tree.children_right
    n = len(left)
    is_leaf = left < 0
    r_node = tree.weighted_n_node_samples / tree.weighted_n_node_samples[0] * tree.impurity
    alphas, costs, alpha = [], [], 0.0
    while True:
        r_sub, n_leaves = r_node.copy(), np.ones(n)
        for t in range(n - 1, -1, -1):                 # children have larger ids than their parent
            if not is_leaf[t]:
                r_sub[t] = r_sub[left[t]] + r_sub[right[t]]
                n_leaves[t] = n_leaves[left[t]] + n_leaves[right[t]]
        alphas.append(alpha)
        costs.append(r_sub[0])
        if is_leaf[0]:
            break
        inside = np.zeros(n, bool)                     # nodes still in the pruned tree
        inside[0] = True
        for t in range(n):
            if inside[t] and not is_leaf[t]:
                inside[left[t]] = inside[right[t]] = True
        g = np.where(inside & ~is_leaf, (r_node - r_sub) / np.maximum(n_leaves - 1, 1), np.inf)
        t = int(np.argmin(g))
        alpha = max(alpha, g[t])                       # the path's alphas never go down
        is_leaf[t] = True
    return np.array(alphas), np.array(costs)


def pick_on_validation(acc_val):
    """Index of the best validation accuracy; ties go to the LAST (largest alpha, fewest leaves)."""
    return len(acc_val) - 1 - int(np.argmax(acc_val[::-1]))


def main(args) -> dict:
    run = cli.start(args, __file__, use_torch=False)
    rng = np.random.default_rng(run.seed)
    n = 250 if run.quick else 569
    n_trees, rounds = (10, 20) if run.quick else (100, 100)
    rounds_xgb = 30 if run.quick else ROUNDS_XGB
    tree_fig_dpi = 50 if run.quick else 110   # drawing the tree's text boxes is the slow part of --quick
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
    left_out = check_bootstrap(len(x_tr), rng)
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
    # XGBoost with squared loss IS this booster: h = 1, so H = rows in a node, min_child_weight =
    # min rows per leaf, and with lam = 0 its leaf -G/(H + lam) is the mean residual, its gain the
    # squared-error decrease. Same start (base_score = mean y), same rounds, depth and shrinkage.
    ref_xgb = xgb.XGBRegressor(n_estimators=rounds, learning_rate=BOOST_LR, max_depth=BOOST_DEPTH,
                               min_child_weight=BOOST_MIN_LEAF, reg_lambda=0.0, tree_method="exact",
                               base_score=float(yd_tr.mean()), n_jobs=1).fit(xd_tr, yd_tr)
    check.close("boosting train predictions vs XGBRegressor(lambda=0, exact): float32 inside XGBoost",
                f_tr, ref_xgb.predict(xd_tr), atol=0.0, rtol=F32_RTOL)
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

    # 5. XGBoost = boosting with second-order (Newton) steps on log-loss. Replay its trees number by
    # number with the lesson's formulas: every leaf value eta * -G/(H + lam), every cover = H, every
    # split's gain, and our own exact, sparsity-aware search over the rows in each node must find that
    # same best gain, with a tenth of the feature values missing (so the default direction matters).
    # All 569 tumours even in --quick: with fewer, the tree is too small to overfit or to prune.
    x_all = d.data.astype(np.float32).astype(np.float64)
    x_fit, x_hold, y_fit, y_hold = train_test_split(x_all, d.target, test_size=2 * SPLIT_VAL,
                                                    stratify=d.target, random_state=run.seed)
    x_val, x_test, y_val, y_test = train_test_split(x_hold, y_hold, test_size=0.5, stratify=y_hold,
                                                    random_state=run.seed)
    print(f"tumours for sections 5-7: train {len(y_fit)}, validation {len(y_val)}, test {len(y_test)}")
    holes = rng.random(x_fit.shape) < MISSING_FRAC
    x_holes = np.where(holes, np.nan, x_fit)                              # (N, 30) with NaNs
    replayed = xgb.XGBClassifier(n_estimators=XGB_REPLAY, max_depth=XGB_DEPTH, learning_rate=XGB_ETA,
                                 reg_lambda=XGB_LAMBDA, min_child_weight=XGB_MIN_CHILD, base_score=0.5,
                                 tree_method="exact", n_jobs=1).fit(x_holes, y_fit)
    rep = replay_xgb(replayed, x_holes, y_fit, XGB_LAMBDA, XGB_ETA, XGB_MIN_CHILD)
    scale = float(rep["gain"][1].max())                                   # the root gains
    n_nodes = len(rep["gain"][0])
    check.close(f"xgboost: cover of all {len(rep['cover'][0])} nodes = H = sum p(1-p) of its rows",
                *rep["cover"], atol=0.0, rtol=F32_RTOL)
    check.close(f"xgboost: {len(rep['leaf'][0])} leaf values = eta * -G/(H + lambda), lambda {XGB_LAMBDA}",
                *rep["leaf"], atol=1e-7, rtol=F32_RTOL)
    check.close(f"xgboost: gain of its {n_nodes} splits = G_L^2/(H_L+lam) + G_R^2/(H_R+lam) - G^2/(H+lam)",
                *rep["gain"], atol=F32_RTOL * scale)
    check.close(f"xgboost: our exact search (missing rows tried left and right) finds each split's gain",
                *rep["best"], atol=F32_RTOL * scale)
    check.close("xgboost: margin F = sum of the leaves each row reaches", *rep["margin"], atol=1e-5)
    df = replayed.get_booster().trees_to_dataframe()
    inner = df[df.Feature != "Leaf"]
    print(f"  {int((inner.Missing == inner.Yes).sum())} of {len(inner)} splits send missing values "
          "to the 'yes' (x < threshold) side: learned per split, from the gain")

    # 6. What XGBoost adds, one at a time, on the same tumours (fit on train, scored on validation).
    # Small data: one validation row is ~1% accuracy, so log-loss is the finer measure; times are
    # single-threaded and tiny here; 'hist' pays off from ~1e5 rows.
    def fit_eval(label, model, x_a, x_b):
        t0 = time.perf_counter()
        model.fit(x_a, y_fit)
        sec = time.perf_counter() - t0
        p = model.predict_proba(x_b)[:, 1]
        acc, ll = float(np.mean((p > 0.5) == y_val)), float(log_loss(y_val, p))
        print(f"  {label:<54} val acc {acc:.3f}  log-loss {ll:.3f}  fit {1000 * sec:7.1f} ms")
        return dict(label=label, model=model, acc=acc, ll=ll)

    print(f"one XGBoost addition at a time ({rounds_xgb} rounds, depth {XGB_DEPTH}):")
    settings = dict(n_estimators=rounds_xgb, max_depth=XGB_DEPTH, min_child_weight=XGB_MIN_CHILD,
                    reg_lambda=0.0, learning_rate=1.0, tree_method="exact", n_jobs=1, random_state=run.seed)
    rows = [fit_eval("sklearn GradientBoosting (1st-order splits, lr 0.1)",
                     GradientBoostingClassifier(n_estimators=rounds_xgb, max_depth=XGB_DEPTH,
                                                random_state=run.seed), x_fit, x_val)]
    for label, change in (("xgboost: Newton splits and leaves, lam 0, eta 1", {}),
                          (f"+ regularised leaves -G/(H + lam), lam {XGB_LAMBDA}", dict(reg_lambda=XGB_LAMBDA)),
                          ("+ shrinkage eta 0.1", dict(learning_rate=0.1)),
                          ("+ column subsampling 0.5 per tree", dict(colsample_bytree=0.5)),
                          ("+ histogram splits (tree_method hist, 256 bins)", dict(tree_method="hist"))):
        settings.update(change)
        rows.append(fit_eval(label, xgb.XGBClassifier(**settings), x_fit, x_val))
    # LightGBM grows leaf-wise (always the leaf with the best gain, any depth) with as many leaves.
    rows.append(fit_eval(f"lightgbm: leaf-wise, {2 ** XGB_DEPTH} leaves, otherwise as above",
                         lgb.LGBMClassifier(n_estimators=rounds_xgb, num_leaves=2 ** XGB_DEPTH,
                                            learning_rate=0.1, reg_lambda=XGB_LAMBDA, colsample_bytree=0.5,
                                            min_child_weight=XGB_MIN_CHILD, n_jobs=1, verbosity=-1,
                                            random_state=run.seed), x_fit, x_val))
    # Missing values: learned default direction vs filling in the training mean.
    x_val_holes = np.where(rng.random(x_val.shape) < MISSING_FRAC, np.nan, x_val)
    fit_eval(f"xgboost, {MISSING_FRAC:.0%} NaN: learned default direction", xgb.XGBClassifier(**settings),
             x_holes, x_val_holes)
    mean = np.nanmean(x_holes, 0)
    fit_eval(f"xgboost, {MISSING_FRAC:.0%} NaN: filled with the train mean", xgb.XGBClassifier(**settings),
             np.where(np.isnan(x_holes), mean, x_holes), np.where(np.isnan(x_val_holes), mean, x_val_holes))
    chosen = min(rows, key=lambda r: r["ll"])                  # selected on validation log-loss
    acc_boost_test = float(np.mean(chosen["model"].predict(x_test) == y_test))
    print(f"selected on validation: {chosen['label'].strip()}; test accuracy (once) {acc_boost_test:.3f}")

    # 7. Overfitting with depth, on our own tree: splitting a node never lowers training accuracy
    # (the children's majorities cover at least the parent's), so training accuracy climbs with depth
    # to 1 on rows that are all distinct. Our growth never looks at the depth limit, so the depth-k
    # tree is the deepest tree cut at depth k: grow once, read every depth off it.
    depths = np.array(list(MAX_DEPTHS))
    deep = Tree("gini", depths[-1]).fit(x_fit, y_fit, 2)
    check.close(f"depth sweep: deepest tree cut at depth {DEPTH} = a tree grown to depth {DEPTH}",
                value_at_depth(deep, x_val, DEPTH), Tree("gini", DEPTH).fit(x_fit, y_fit, 2).value(x_val),
                atol=0.0)
    acc_d = np.array([[np.mean(value_at_depth(deep, xs, k).argmax(1) == ys)
                       for xs, ys in ((x_fit, y_fit), (x_val, y_val))] for k in depths])   # (depths, 2)
    check.greater("depth sweep: train accuracy never drops as depth grows (min step)",
                  float(np.diff(acc_d[:, 0]).min()), 0.0, strict=False)
    check.close(f"depth sweep: train accuracy reaches 1 by depth {depths[-1]}", acc_d[-1, 0], 1.0, atol=0.0)
    best_depth = int(depths[np.argmax(acc_d[:, 1])])
    print(f"  validation accuracy peaks at depth {best_depth} ({acc_d[:, 1].max():.3f}); "
          f"train reaches 1 at depth {int(depths[np.argmax(acc_d[:, 0] == 1.0)])}")

    # 8. Cost-complexity pruning: grow the full tree, cut weakest links (our code, against
    # sklearn's path), refit at each alpha, choose alpha on validation, test once.
    full = DecisionTreeClassifier(random_state=run.seed).fit(x_fit, y_fit)
    path = full.cost_complexity_pruning_path(x_fit, y_fit)
    alphas, costs = weakest_link_path(full.tree_)
    check.equal("pruning: our weakest-link path has as many steps as sklearn's", len(alphas), len(path.ccp_alphas))
    check.close("pruning: alphas, ours vs cost_complexity_pruning_path", alphas, path.ccp_alphas, atol=1e-12)
    check.close("pruning: total leaf impurity R(T) after each cut, ours vs sklearn", costs, path.impurities,
                atol=1e-12)
    pruned = [DecisionTreeClassifier(random_state=run.seed, ccp_alpha=a).fit(x_fit, y_fit) for a in alphas]
    leaves = np.array([t.get_n_leaves() for t in pruned])
    acc_tr = np.array([t.score(x_fit, y_fit) for t in pruned])
    acc_va = np.array([t.score(x_val, y_val) for t in pruned])
    check.true("pruning: leaves never increase along the path", bool(np.all(np.diff(leaves) <= 0)),
               demo=True)
    pick = pick_on_validation(acc_va)
    check.close("pruning: the chosen alpha has the best validation accuracy on the path",
                acc_va[pick], acc_va.max(), atol=0.0)
    acc_pruned_test = pruned[pick].score(x_test, y_test)
    print(f"  alpha {alphas[pick]:.4f}: {leaves[pick]} leaves (full tree {leaves[0]}), validation "
          f"{acc_va[pick]:.3f} (full tree {acc_va[0]:.3f}), test accuracy (once) {acc_pruned_test:.3f}")

    fig = plt.figure(figsize=(14, 11))
    grid = fig.add_gridspec(2, 2, height_ratios=[1.6, 1])
    ax0, ax1, ax2 = fig.add_subplot(grid[0, :]), fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[1, 1])
    plot_tree(pruned[pick], feature_names=list(d.feature_names), class_names=list(d.target_names),
              filled=True, impurity=False, fontsize=7, ax=ax0)
    ax0.set_title(f"pruned tree chosen on validation (ccp_alpha {alphas[pick]:.4f}, {leaves[pick]} leaves)")
    ax1.plot(depths, acc_d[:, 0], "o-", label="train")
    ax1.plot(depths, acc_d[:, 1], "o-", label="validation")
    ax1.set(xlabel="max depth (our tree)", ylabel="accuracy", title="deeper trees memorise")
    ax2.step(alphas, acc_tr, "o-", where="post", label="train")
    ax2.step(alphas, acc_va, "o-", where="post", label="validation")
    ax2.axvline(alphas[pick], color="k", ls=":", label="chosen on validation")
    ax2.set(xscale="symlog", xlabel="ccp_alpha", ylabel="accuracy", title="cost-complexity pruning path")
    for ax in (ax1, ax2):
        ax.legend()
    plot.save(fig, run, "tree_depth_pruning.png", dpi=tree_fig_dpi)
    return cli.finish(run, {"tree_acc": float(acc_tree), "forest_acc": float(acc_rf),
                            "boost_r2": float(r2_gb), "xgb_selected_test_acc": acc_boost_test,
                            "best_depth": best_depth, "pruned_test_acc": float(acc_pruned_test)}, answers={
        "out_of_bag": ("about 10%" if left_out < 0.2 else "about 37%" if left_out < 0.5 else "about 63%",
                       f"{left_out:.3f} of the {len(x_tr)} rows left out of a bootstrap sample, mean of "
                       f"{BOOTSTRAP_DRAWS} draws; (1 - 1/n)^n -> 1/e = 0.368"),
        "pruning_cuts": ("yes" if leaves[pick] < leaves[0] else "no",
                         f"chosen alpha {alphas[pick]:.4f}: {leaves[pick]} leaves, full tree {leaves[0]} "
                         "(tree_depth_pruning.png, lower right)"),
    })


# Predict, then run: answer in your copy (`python -m dlcourse exercise 02.12`) before running it;
# `python -m dlcourse check 02.12` compares your answers with what the run measures.
# PREDICT out_of_bag (about 10% / about 37% / about 63%): a bootstrap sample draws n rows with replacement from n; what share of the rows does it leave out?
# ANSWER out_of_bag:
# PREDICT pruning_cuts (yes / no): pruning by cost complexity, alpha chosen on validation: does the chosen tree have fewer leaves than the full one?
# ANSWER pruning_cuts:


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
