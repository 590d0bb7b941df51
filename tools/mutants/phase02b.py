"""Planted mistakes for phase 02, lessons 10-17 and the capstone (see tools/mutate.py): each a
realistic one-line slip in the from-scratch code, which a self-check of the lesson must catch."""
MUTANTS = [
    # 02.10 logistic regression
    dict(lesson="02.10", why="weight gradient without the 1/N of the mean loss",
         find="x.T @ err / len(y) + lam * w", replace="x.T @ err + lam * w"),
    dict(lesson="02.10", why="bias gradient summed instead of averaged",
         find="err.mean()", replace="err.sum()"),
    dict(lesson="02.10", why="gradient descent never updates the intercept",
         find="w, b = w - LR * gw, b - LR * gb", replace="w, b = w - LR * gw, b"),
    dict(lesson="02.10", why="Newton's penalty matrix also penalises the bias",
         find="    pen[0, 0] = 0.0\n", replace=""),
    dict(lesson="02.10", why="Hessian weights p instead of p(1 - p)",
         find="hess = (x1 * (p * (1 - p))[:, None]).T @ x1", replace="hess = (x1 * p[:, None]).T @ x1"),
    dict(lesson="02.10", why="stable sigmoid's negative branch written as 1 / (1 + e^-|z|)",
         find="e / (1.0 + e))", replace="1.0 / (1.0 + e))"),
]
MUTANTS += [
    # 02.11 SVM
    dict(lesson="02.11", why="hinge subgradient taken only on misclassified points (s f < 0, the perceptron rule)",
         find="active = s * (x @ w + b) < 1.0 ", replace="active = s * (x @ w + b) < 0.0 "),
    dict(lesson="02.11", why="bias subgradient without the 1/N of the mean hinge",
         find="g_b = -s[active].sum() / n", replace="g_b = -s[active].sum()"),
    dict(lesson="02.11", why="regularisation strength 1/C instead of 1/(C N) in the solver",
         find="    lam = 1.0 / (C * n)\n    w, b = np.zeros", replace="    lam = 1.0 / C\n    w, b = np.zeros"),
    dict(lesson="02.11", why="subgradient step taken uphill",
         find="w, b = w - lr * g_w, b - lr * g_b", replace="w, b = w + lr * g_w, b + lr * g_b"),
    dict(lesson="02.11", why="objective sums the hinge instead of averaging it",
         find="np.maximum(0.0, 1.0 - s * (x @ w + b)).mean()", replace="np.maximum(0.0, 1.0 - s * (x @ w + b)).sum()"),
    dict(lesson="02.11", why="squared distance in the RBF kernel missing the factor 2 of the cross term",
         find="- 2 * a @ b.T", replace="- a @ b.T"),
]
MUTANTS += [
    # 02.12 trees and ensembles
    dict(lesson="02.12", why="entropy in nats (natural log) where sklearn and the docstring use bits",
         find="np.log2(np.where(p > 0, p, 1.0))", replace="np.log(np.where(p > 0, p, 1.0))"),
    dict(lesson="02.12", why="feature importance credits the impurity drop without weighting it by the node's rows",
         find="self.importance[j] += n * (imp - child_imp)", replace="self.importance[j] += (imp - child_imp)"),
    dict(lesson="02.12", why="leaf stores class counts instead of class frequencies",
         find='else total / n', replace='else total'),
    dict(lesson="02.12", why="bootstrap drawn without replacement (a permutation: no bagging at all)",
         find="return rng.integers(0, n, n)", replace="return rng.permutation(n)"),
    dict(lesson="02.12", why="boosting fits the trees to F - y (the gradient, not its negative)",
         find="fit(x_tr, y_tr - f_tr)", replace="fit(x_tr, f_tr - y_tr)"),
    dict(lesson="02.12", why="boosting forgets the shrinkage when predicting new rows",
         find="f_eval += BOOST_LR * tree.value(x_eval)", replace="f_eval += tree.value(x_eval)"),
]
MUTANTS += [
    # 02.13 KNN and k-means
    dict(lesson="02.13", why="KNN votes over k + 1 neighbours (off by one)",
         find="[:, :k]  # (N, k) indices", replace="[:, :k + 1]  # (N, k) indices"),
    dict(lesson="02.13", why="k-means++ weights by the distance D instead of D^2",
         find="p=d2 / d2.sum()", replace="p=np.sqrt(d2) / np.sqrt(d2).sum()"),
    dict(lesson="02.13", why="Lloyd assigns each point to its farthest centre",
         find="new = sq_dists(x, centres).argmin(1)", replace="new = sq_dists(x, centres).argmax(1)"),
    dict(lesson="02.13", why="inertia averaged over points instead of summed",
         find="inertia = float(sq_dists(x, centres).min(1).sum())", replace="inertia = float(sq_dists(x, centres).min(1).mean())"),
    dict(lesson="02.13", why="restarts keep the worst run instead of the best",
         find="if best is None or result[2] < best[2]:", replace="if best is None or result[2] > best[2]:"),
]
MUTANTS += [
    # 02.14 PCA
    dict(lesson="02.14", why="SVD of the raw data, not the centred data",
         find="np.linalg.svd(x - mean, full_matrices=False)", replace="np.linalg.svd(x, full_matrices=False)"),
    dict(lesson="02.14", why="variance divided by N instead of N - 1",
         find="var = s ** 2 / (len(x) - 1)", replace="var = s ** 2 / len(x)"),
    dict(lesson="02.14", why="reconstruction forgets to add the mean back",
         find="recon = z[:, :RECON_K] @ ours[:RECON_K] + mean", replace="recon = z[:, :RECON_K] @ ours[:RECON_K]"),
    dict(lesson="02.14", why="components-for-95% count off by one (index, not count)",
         find="k95 = int(np.searchsorted(cum, KEEP_VARIANCE) + 1)", replace="k95 = int(np.searchsorted(cum, KEEP_VARIANCE))"),
]
MUTANTS += [
    # 02.15 model evaluation
    dict(lesson="02.15", why="confusion matrix indexed (prediction, truth): transposed",
         find="np.add.at(m, (y, y_hat), 1)", replace="np.add.at(m, (y_hat, y), 1)"),
    dict(lesson="02.15", why="precision and recall swapped (TP/(TP+FN) called precision)",
         find="p, r = tp / (tp + fp), tp / (tp + fn)", replace="p, r = tp / (tp + fn), tp / (tp + fp)"),
    dict(lesson="02.15", why="ROC sweep treats every row as its own threshold, ignoring tied scores",
         find="last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]", replace="last = np.arange(len(s))"),
    dict(lesson="02.15", why="rank AUC counts a tie as a win instead of one half",
         find="0.5 * (pos[:, None] == neg[None, :])", replace="1.0 * (pos[:, None] == neg[None, :])"),
    dict(lesson="02.15", why="stratified folds assigned at random within each class instead of dealt round-robin",
         find="fold[rows] = np.arange(len(rows)) % k", replace="fold[rows] = rng.integers(0, k, len(rows))"),
    dict(lesson="02.15", why="operating threshold taken one step past the first that reaches the target recall",
         find="threshold = thr_val[np.argmax(rec_val >= TARGET_RECALL)]", replace="threshold = thr_val[np.argmax(rec_val >= TARGET_RECALL) + 1]"),
    dict(lesson="02.15", why="bootstrap resamples the test set without replacement",
         find="i = rng.integers(0, len(y_te), len(y_te))", replace="i = rng.permutation(len(y_te))"),
]
MUTANTS += [
    # 02.16 bias, variance, regularisation
    dict(lesson="02.16", why="variance diagnosed from validation error above the floor, not above training error",
         find="val_err - train_err > HIGH", replace="val_err - floor > HIGH"),
    dict(lesson="02.16", why="ISTA soft-thresholds by alpha instead of lr * alpha",
         find="np.maximum(np.abs(w) - lr * alpha, 0.0)", replace="np.maximum(np.abs(w) - alpha, 0.0)"),
    dict(lesson="02.16", why="MSE gradient without the factor 2 (d/dw of r^2 is 2 r dr/dw)",
         find="w -= lr * 2 / n * p.T @ r", replace="w -= lr / n * p.T @ r"),
    dict(lesson="02.16", why="early stopping keeps the weights of the lowest TRAINING error",
         find="        if val[-1] < best[0]:\n            best = (val[-1], w.copy())",
         replace="        if train[-1] < best[0]:\n            best = (train[-1], w.copy())"),
]
MUTANTS += [
    # 02.17 feature engineering
    dict(lesson="02.17", why="standardising with the sample std (ddof=1) where StandardScaler uses 1/N",
         find="col.std(ddof=0)", replace="col.std(ddof=1)"),
    dict(lesson="02.17", why="one-hot columns in order of appearance, not sorted like OneHotEncoder's",
         find="cats = np.sort(col.unique())", replace="cats = np.asarray(col.unique())"),
    dict(lesson="02.17", why="a value on a bin edge goes to the lower bin",
         find='np.searchsorted(edges[1:-1], col.to_numpy(), side="right")',
         replace='np.searchsorted(edges[1:-1], col.to_numpy(), side="left")'),
    dict(lesson="02.17", why="k bin edges instead of k + 1 (one bin too few)",
         find="edges = np.linspace(col.min(), col.max(), k + 1)", replace="edges = np.linspace(col.min(), col.max(), k)"),
]
MUTANTS += [
    # 02.capstone: a slip in each hand-written gradient, and in Adam
    dict(lesson="02.capstone", why="logistic dL/dz without the 1/N of the mean loss",
         find="dz = (1 / (1 + np.exp(-z)) - y) / len(y)", replace="dz = (1 / (1 + np.exp(-z)) - y)"),
    dict(lesson="02.capstone", why="logistic weight gradient forgets the L2 term the loss contains",
         find='{"w": x.T @ dz + L2 * self.params["w"]', replace='{"w": x.T @ dz'),
    dict(lesson="02.capstone", why="softmax bias gradient averaged again after dZ was already divided by N",
         find='"b": dz.sum(0)}', replace='"b": dz.mean(0)}'),
    dict(lesson="02.capstone", why="MLP backprop uses 1 - h as the tanh derivative instead of 1 - h^2",
         find="(1 - h * h)", replace="(1 - h)"),
    dict(lesson="02.capstone", why="MLP output-layer gradient forgets the weight decay",
         find='"W2": h.T @ dz + L2 * p["W2"]', replace='"W2": h.T @ dz'),
    dict(lesson="02.capstone", why="Adam without bias correction of m and v",
         find="p -= lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + ADAM_EPS)",
         replace="p -= lr * m / (np.sqrt(v) + ADAM_EPS)"),
]
