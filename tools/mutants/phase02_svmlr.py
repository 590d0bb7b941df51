"""Planted mistakes for the SVM-vs-logistic-regression part of 02.11 and the trustworthy-evaluation
part of 02.15 (see tools/mutate.py): each a realistic one-line slip a self-check must catch."""
MUTANTS = [
    # 02.11 SVM vs logistic regression
    dict(lesson="02.11", why="hinge loss with the margin at 0 instead of 1 (max(0, -m), the perceptron loss)",
         find="return np.maximum(0.0, 1.0 - m)", replace="return np.maximum(0.0, 0.0 - m)"),
    dict(lesson="02.11", why="logistic loss in bits (log2) where log_loss uses the natural log",
         find="return np.logaddexp(0.0, -m)", replace="return np.log2(1.0 + np.exp(-m))"),
    dict(lesson="02.11", why="support vectors counted as strict margin violators only, missing the points on the margin",
         find="ours = np.flatnonzero(m <= 1.0 + SV_TOL)", replace="ours = np.flatnonzero(m < 1.0 - SV_TOL)"),
    dict(lesson="02.11", why="each point's logistic weight sigmoid(m) instead of sigmoid(-m)",
         find="weights = sigmoid(-s_tr * f_lr)", replace="weights = sigmoid(s_tr * f_lr)"),
    dict(lesson="02.11", why="Platt scaling fitted to the raw 0/1 labels, without Platt's smoothed targets",
         find="t = np.where(y01 == 1, (n1 + 1) / (n1 + 2), 1 / (n0 + 2))", replace="t = y01.astype(float)"),
]
MUTANTS += [
    # 02.15 trustworthy evaluation sets
    dict(lesson="02.15", why="forward chaining yields (validation, train) swapped: validation rows before training rows",
         find="yield train, np.arange(start, start + size)", replace="yield np.arange(start, start + size), train"),
    dict(lesson="02.15", why="forward chaining's training rows run one past the start of the validation block",
         find="        train = np.arange(start)\n", replace="        train = np.arange(start + 1)\n"),
    dict(lesson="02.15", why="group split deals rows, not groups, into folds: copies of an item leak across",
         find="return fold_of_group[group]", replace="return rng.permutation(len(group)) % k"),
    dict(lesson="02.15", why="near-duplicate radius far below the copies' jitter: every row its own group",
         find="group = near_duplicate_groups(x, DUP_RADIUS)", replace="group = near_duplicate_groups(x, DUP_JITTER / 100)"),
    dict(lesson="02.15", why="adversarial validation scored in-sample by a 1-NN memoriser instead of out-of-fold",
         find='p = cross_val_predict(LogisticRegression(), xs, dom, cv=FOLDS, method="predict_proba")[:, 1]',
         replace='p = KNeighborsClassifier(1).fit(xs, dom).predict_proba(xs)[:, 1]'),
]
