"""13 - KNN and k-means (phase 02, week 3)

Goal: classify wines with k-nearest neighbours and cluster points with k-means (k-means++
      seeding), both from scratch in NumPy, and pick k with the elbow plot.
Run:  python phase02-math/13-knn-kmeans.py            (1500 generated points; about 5 s on a 2-core CPU)
      python phase02-math/13-knn-kmeans.py --quick    (seconds, offline, used by the tests)
Expect: KNN predictions equal KNeighborsClassifier's (test accuracy k=1: 1.000, k=5: 0.963,
      k=15: 0.981); k-means++ picks follow the D^2 rule; from the same seeds, our k-means equals
      sklearn's KMeans (labels equal, inertia diff ~1e-12); k-means++ seeds start ~4x lower than
      random ones (10879 vs 49099; seed 0, full); the elbow bends at k=4; figures kmeans_steps.png
      and elbow.png.
"""
from dlcourse import cli   # light: nothing heavy is imported before the flags are checked


def parse_args(argv=None):
    return cli.parser(__doc__).parse_args(argv)


if __name__ == "__main__":
    ARGS = parse_args()   # flags are checked here, before the imports below load torch:
                          # a mistyped flag fails at once with a one-line message

import numpy as np
from sklearn.cluster import KMeans
from sklearn.datasets import load_wine, make_blobs
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier

from dlcourse import check, data, plot
import matplotlib.pyplot as plt

KS_KNN = (1, 5, 15)     # neighbour counts to compare: 1 memorises, larger k smooths
TRUE_K = 4              # clusters in the generated data
K_RANGE = range(1, 9)   # k values for the elbow plot
N_INIT = 10             # k-means restarts; keep the lowest inertia (it is non-convex)
MAX_ITER = 100          # Lloyd iterations at most (it usually stops within a few dozen)
PP_DRAWS = 5000         # draws of the next k-means++ centre to check its D^2 weighting
SIGMAS = 5              # statistical checks allow 5 standard errors (fails ~1 in 1.7 million)


def sq_dists(a, b):
    """||a_i - b_j||^2 for all pairs: ||a||^2 + ||b||^2 - 2 a.b, one matrix product instead of loops."""
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T   # (Na, Nb)
    return np.maximum(d, 0.0)                                               # rounding can dip below 0


def knn_predict(x_tr, y_tr, x, k):
    """Majority vote of the k closest training points. No training at all: the 'model' is the
    data, and all the cost moves to prediction (N_test x N_train distances).
    Ties in the vote go to the smallest label, as in sklearn."""
    # EXERCISE knn_predict: stable argsort of sq_dists to the training rows, keep the first k, count votes per class and take argmax (ties go to the smallest label)
    nearest = np.argsort(sq_dists(x, x_tr), axis=1, kind="stable")[:, :k]  # (N, k) indices
    votes = y_tr[nearest]                                                   # (N, k) labels
    counts = np.stack([(votes == c).sum(1) for c in range(y_tr.max() + 1)], 1)  # (N, C)
    return counts.argmax(1)
    # END EXERCISE


def next_centre(x, centres, rng):
    """Index of the next k-means++ centre: row i with probability D(x_i)^2 / sum_j D(x_j)^2,
    D = distance to the nearest centre chosen so far."""
    # EXERCISE next_centre: D^2 = squared distance of each row to its nearest centre so far; draw one row index with probability D^2 / sum D^2 (rng.choice with p=)
    d2 = sq_dists(x, centres).min(1)
    return rng.choice(len(x), p=d2 / d2.sum())
    # END EXERCISE


def kmeans_pp(x, k, rng):
    """k-means++: the first centre uniformly, each next one with probability proportional to
    D(x)^2, the squared distance to the nearest centre chosen so far. Far-away points are
    likely picks, so the seeds spread over the clusters; the expected inertia is within
    O(log k) of the optimum before Lloyd even starts (Arthur & Vassilvitskii 2007)."""
    centres = [x[rng.integers(len(x))]]
    for _ in range(k - 1):
        centres.append(x[next_centre(x, np.array(centres), rng)])
    return np.array(centres)


def check_d2_sampling(x, rng):
    """With one centre c fixed, the D^2 rule picks row i with probability w_i = d_i / sum d
    (d = squared distance to c), so the picked row's d has mean sum d^2 / sum d and variance
    sum d^3 / sum d - mean^2. Uniform picks, D instead of D^2, or 'always the farthest' all
    shift that mean by many standard errors."""
    c = x[rng.integers(len(x))][None, :]                   # (1, 2) a first centre
    d = sq_dists(x, c)[:, 0]                               # (N,)
    picked = d[[next_centre(x, c, rng) for _ in range(PP_DRAWS)]]
    mean = (d ** 2).sum() / d.sum()
    se = np.sqrt(((d ** 3).sum() / d.sum() - mean ** 2) / PP_DRAWS)
    check.close(f"k-means++: mean D^2 of {PP_DRAWS} picked centres vs sum D^4 / sum D^2 "
                f"({SIGMAS} std errors)", picked.mean(), mean, atol=SIGMAS * se)


def lloyd(x, centres):
    """Minimise the inertia J = sum_i ||x_i - mu_{c(i)}||^2 by alternating two exact steps:
    assign each point to its nearest centre (best c for fixed mu), then move each centre to the
    mean of its points (best mu for fixed c: dJ/dmu_j = 0). J never increases, and there are
    finitely many assignments, so it stops when assignments repeat; but only at a *local* minimum.
    Returns labels, centres, inertia and the centre history (for the figure)."""
    # EXERCISE lloyd: up to MAX_ITER times: assign each point to its nearest centre, stop when assignments repeat, else move each centre to its points' mean (empty: keep it); inertia = sum of min squared distances
    history = [centres.copy()]
    labels = None
    for _ in range(MAX_ITER):
        new = sq_dists(x, centres).argmin(1)
        if labels is not None and np.array_equal(new, labels):
            break
        labels = new
        centres = np.array([x[labels == j].mean(0) if np.any(labels == j) else centres[j]
                            for j in range(len(centres))])
        history.append(centres.copy())
    inertia = float(sq_dists(x, centres).min(1).sum())
    return labels, centres, inertia, history
    # END EXERCISE


def kmeans(x, k, rng, init="k-means++"):
    """Best of N_INIT restarts: lloyd's (labels, centres, inertia, history), its seeds, and the
    inertia every restart reached (to see how much the restarts differ)."""
    best, reached = None, []
    for _ in range(N_INIT):
        seeds = kmeans_pp(x, k, rng) if init == "k-means++" else x[rng.choice(len(x), k, replace=False)]
        result = lloyd(x, seeds) + (seeds,)
        reached.append(result[2])
        if best is None or result[2] < best[2]:
            best = result
    return best + (reached,)


def main(args) -> dict:
    run = cli.start(args, __file__, use_torch=False)
    rng = np.random.default_rng(run.seed)
    n = 300 if run.quick else 1500

    # 1. KNN on wine. Distances mix units (alcohol in %, proline in mg/L), so standardise first,
    # or the biggest-numbered feature decides alone.
    wine = load_wine()
    x_tr, x_te, y_tr, y_te = train_test_split(wine.data, wine.target, test_size=0.3,
                                              stratify=wine.target, random_state=run.seed)
    mu, sd = x_tr.mean(0), x_tr.std(0)
    x_tr, x_te = (x_tr - mu) / sd, (x_te - mu) / sd
    # TRUE_K blobs around the corners of a square (positions jittered by the seed): well
    # separated, so the right k is unambiguous and the elbow has something to find.
    corners = np.array([[-5, -5], [-5, 5], [5, -5], [5, 5]])[:TRUE_K] + rng.uniform(-1.5, 1.5, (TRUE_K, 2))
    x_blobs, _ = make_blobs(n, centers=corners, cluster_std=1.3, random_state=run.seed)
    data.announce("scikit-learn wine, for KNN", kind="bundled",
                  detail=f"{len(wine.data)} wines, 13 chemical measurements, 3 cultivars")
    data.announce("Gaussian blobs (scikit-learn make_blobs), for k-means", kind="generated",
                  detail=f"{n} 2-D points in {TRUE_K} blobs")
    # Wine's test rows sit deep inside their classes, where k and k + 1 neighbours vote alike; random
    # query points (standard normal in the standardised space) land between the classes too, where
    # the vote is close and ties between two classes happen: there every detail of the rule shows.
    x_query = rng.normal(size=(500, x_tr.shape[1]))                      # (500, 13)
    accs = {}
    for k in KS_KNN:
        ours = knn_predict(x_tr, y_tr, np.vstack([x_te, x_query]), k)
        ref = KNeighborsClassifier(n_neighbors=k, algorithm="brute").fit(x_tr, y_tr)
        check.equal(f"KNN k={k} predictions vs KNeighborsClassifier (test rows + 500 random queries)",
                    ours, ref.predict(np.vstack([x_te, x_query])))
        accs[k] = float(np.mean(ours[:len(y_te)] == y_te))
    print("KNN test accuracy:", " | ".join(f"k={k}: {a:.3f}" for k, a in accs.items()))

    # 2. k-means: the seeding follows the D^2 rule, and from the same seeds, the same clustering.
    check_d2_sampling(x_blobs, rng)
    labels, _, inertia, _, seeds, _ = kmeans(x_blobs, TRUE_K, rng)
    ref = KMeans(TRUE_K, init=seeds, n_init=1, algorithm="lloyd", tol=0.0, max_iter=MAX_ITER).fit(x_blobs)
    ref_pp = KMeans(TRUE_K, n_init=N_INIT, random_state=run.seed).fit(x_blobs)
    check.equal("k-means labels vs sklearn KMeans from the same seeds", labels, ref.labels_)
    check.close("k-means inertia vs KMeans.inertia_", inertia, ref.inertia_, atol=1e-6, rtol=1e-9)
    check.close("best-of-restarts inertia vs sklearn's own k-means++ (within 1%)", inertia,
                ref_pp.inertia_, atol=0.0, rtol=0.01)

    # 3. Why k-means++: compare the inertia of the *seeds themselves*, averaged over draws.
    start_pp = np.mean([sq_dists(x_blobs, kmeans_pp(x_blobs, TRUE_K, rng)).min(1).sum() for _ in range(20)])
    start_rand = np.mean([sq_dists(x_blobs, x_blobs[rng.choice(n, TRUE_K, replace=False)]).min(1).sum()
                          for _ in range(20)])
    check.less("k-means++ seeds start with lower inertia than random seeds", start_pp, start_rand)

    # 4. Elbow: inertia always falls with k (k = N gives 0), so look for where the fall slows.
    runs = {k: kmeans(x_blobs, k, rng) for k in K_RANGE}
    inertias = [runs[k][2] for k in K_RANGE]
    # With more centres than blobs, restarts end in different local minima: keep the lowest.
    reached = runs[K_RANGE[-1]][-1]
    check.close(f"k={K_RANGE[-1]}: kept restart is the lowest of the {N_INIT} "
                f"(they reached {min(reached):.0f} ... {max(reached):.0f})", inertias[-1], min(reached),
                atol=0.0)
    drops = -np.diff(inertias)                                  # gain of adding the (k+1)-th cluster
    elbow = int(np.argmax(drops[:-1] / drops[1:])) + 2          # k after which the gain collapses
    print(f"inertia by k: {', '.join(f'{k}:{i:.0f}' for k, i in zip(K_RANGE, inertias))}; elbow at k={elbow}")
    check.equal("elbow finds the number of generated blobs", elbow, TRUE_K)

    # The figure starts Lloyd from random seeds: k-means++ seeds usually land so well that
    # there is little movement to watch.
    history = lloyd(x_blobs, x_blobs[rng.choice(n, TRUE_K, replace=False)])[3]
    steps = sorted({0, 1, min(2, len(history) - 1), len(history) - 1})
    fig, axes = plt.subplots(1, len(steps), figsize=(4 * len(steps), 4))
    for ax, s in zip(axes, steps):
        c = history[s]
        assign = sq_dists(x_blobs, c).argmin(1)
        ax.scatter(x_blobs[:, 0], x_blobs[:, 1], c=assign, cmap="tab10", vmin=0, vmax=9, s=6)
        path = np.array(history[:s + 1])                        # (s+1, k, 2) centre trajectories
        for j in range(TRUE_K):
            ax.plot(path[:, j, 0], path[:, j, 1], "k.-", lw=1)
        ax.scatter(c[:, 0], c[:, 1], marker="X", s=160, c="k", edgecolors="w")
        ax.set(title="random seeds" if s == 0 else f"after {s} update(s)", xticks=[], yticks=[])
    plot.save(fig, run, "kmeans_steps.png")
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(list(K_RANGE), inertias, "o-")
    ax.axvline(elbow, ls="--", c="gray")
    ax.set(xlabel="k", ylabel="inertia (sum of squared distances)", title="elbow plot")
    plot.save(fig, run, "elbow.png")
    ratio = start_rand / start_pp
    return cli.finish(run, {"knn_acc": accs, "inertia": inertia, "elbow_k": elbow,
                            "seed_inertia_pp": float(start_pp), "seed_inertia_random": float(start_rand)}, answers={
        "elbow": (str(elbow) if str(elbow) in ("2", "4", "8") else "none",
                  f"inertia by k: {', '.join(f'{k}:{i:.0f}' for k, i in zip(K_RANGE, inertias))} (elbow.png)"),
        "seeding_gain": ("about the same" if ratio < 1.5 else "a few times lower" if ratio <= 10 else "over 10x lower",
                         f"mean inertia of the seeds alone: k-means++ {start_pp:.0f}, random {start_rand:.0f} "
                         f"({ratio:.1f}x)"),
    })


# Predict, then run: answer in your copy (`python -m dlcourse exercise 02.13`) before running it;
# `python -m dlcourse check 02.13` compares your answers with what the run measures.
# PREDICT elbow (2 / 4 / 8): the blobs sit near the 4 corners of a square; at which k does the inertia's fall slow down the most?
# ANSWER elbow:
# PREDICT seeding_gain (about the same / a few times lower / over 10x lower): before any Lloyd step, how does the inertia of k-means++ seeds compare with that of random seeds?
# ANSWER seeding_gain:


if __name__ == "__main__":
    with cli.friendly_errors():
        main(ARGS)
