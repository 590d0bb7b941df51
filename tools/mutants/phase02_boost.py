"""Planted mistakes for the XGBoost / pruning part of lesson 02.12 (see tools/mutate.py): each a
realistic one-line slip in the from-scratch code, which a self-check of the lesson must catch."""
MUTANTS = [
    dict(lesson="02.12", why="leaf weight without the L2 penalty: -G/H instead of -G/(H + lambda)",
         find="return -g_sum / (h_sum + lam)", replace="return -g_sum / h_sum"),
    dict(lesson="02.12", why="split gain without the 1/2 of the second-order Taylor expansion",
         find="    return 0.5 * (g_left ** 2 / (h_left + lam)", replace="    return 1.0 * (g_left ** 2 / (h_left + lam)"),
    dict(lesson="02.12", why="hessian ignored (h = 1): first-order gradient steps instead of Newton steps",
         find="return p - y, p * (1 - p)", replace="return p - y, np.ones_like(p)"),
    dict(lesson="02.12", why="split search sends missing values only to the right (no learned default direction)",
         find="for gl, hl in ((g_left, h_left), (g_left + g_miss, h_left + h_miss)):",
         replace="for gl, hl in ((g_left, h_left),):"),
    dict(lesson="02.12", why="min_child_weight read as a row count instead of a hessian sum",
         find="gain[~cut | (hl < min_child) | (h_sum - hl < min_child)] = -np.inf",
         replace="gain[~cut | (np.arange(len(hl)) < min_child) | (len(g) - np.arange(len(hl)) < min_child)] = -np.inf"),
    dict(lesson="02.12", why="weakest link measured per node, not per leaf saved: no division by |T_t| - 1",
         find="(r_node - r_sub) / np.maximum(n_leaves - 1, 1), np.inf)", replace="(r_node - r_sub), np.inf)"),
    dict(lesson="02.12", why="pruning alpha chosen on training accuracy instead of validation",
         find="pick = pick_on_validation(acc_va)", replace="pick = pick_on_validation(acc_tr)"),
    dict(lesson="02.12", why="depth cut off by one: the node after depth + 1 splits",
         find="while \"feature\" in node and k < depth:", replace="while \"feature\" in node and k <= depth:"),
]
