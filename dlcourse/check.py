"""Self-checks: compare, print what was compared, fail loudly.

Every check prints one line, e.g.

    [check] my_linear vs nn.Linear: max |diff| 2.4e-07 <= 1e-05  OK

and raises CheckFailed when it does not hold. `cli.friendly_errors()` turns that into
a non-zero exit, and `cli.finish()` refuses to record progress for a lesson whose checks
did not all run and pass. `summary()` counts them (the tests read that line).
"""
import math

import numpy as np

from dlcourse import shorten

PASSED = []  # names of checks of the lesson's own code that passed, in order
DEMOS = []   # library-against-library demonstrations (demo=True): shown, never counted


class CheckFailed(AssertionError):
    """A self-check did not hold: the lesson's result is wrong, not just unlucky."""


def _as_numpy(x):
    """Tensor (any device, any dtype), list or number -> numpy array."""
    if hasattr(x, "detach"):  # a torch tensor
        x = x.detach().cpu()
        if x.dtype.is_floating_point:
            x = x.double()  # numpy has no bfloat16; float64 loses nothing
        x = x.numpy()
    return np.asarray(x)


def _ok(name, line, demo=False):
    (DEMOS if demo else PASSED).append(name)
    print(f"[{'demo' if demo else 'check'}] {name}: {line}  OK", flush=True)


def _fail(name, line, demo=False):
    print(f"[{'demo' if demo else 'check'}] {name}: {line}  FAILED", flush=True)
    raise CheckFailed(f"{'demonstration' if demo else 'check'} '{name}' failed: {line}")




def close(name, actual, expected, atol=1e-6, rtol=0.0, demo=False):
    """Assert two arrays/tensors/numbers agree elementwise: |a - e| <= atol + rtol*|e|.

    Prints the largest absolute difference. Shapes must match exactly.
    demo=True (every check takes it): a library-against-library identity shown to the
    learner; it still fails loudly, but is not counted among the lesson's own checks.
    """
    a = _as_numpy(actual).astype(float)
    e = _as_numpy(expected).astype(float)
    if a.shape != e.shape:
        _fail(name, f"shape {a.shape} != expected {e.shape}", demo)
    if a.size == 0:
        _fail(name, "nothing to compare (empty arrays)", demo)
    if (np.isnan(a) != np.isnan(e)).any():
        _fail(name, "NaN in different places", demo)
    if ((np.isinf(a) | np.isinf(e)) & (a != e) & ~np.isnan(e)).any():
        _fail(name, "infinite values differ", demo)
    finite = np.isfinite(e)  # NaNs and matching infinities are equal by the checks above
    diff = np.abs(a[finite] - e[finite])
    max_diff = float(diff.max()) if diff.size else 0.0
    bound = atol + rtol * np.abs(e[finite])
    worst = float((diff - bound).max()) if diff.size else -1.0
    tol = f"{atol:g}" + (f" + {rtol:g}*|ref|" if rtol else "")
    line = f"max |diff| {max_diff:.3g} <= {tol}"
    if worst > 0:
        _fail(name, line.replace("<=", ">"), demo)
    _ok(name, line, demo)
    return max_diff


def equal(name, actual, expected, demo=False):
    """Assert exact equality (labels, shapes, counts, strings...). Prints both."""
    if hasattr(actual, "shape") or hasattr(expected, "shape"):
        same = np.array_equal(_as_numpy(actual), _as_numpy(expected))
        shown = f"arrays of shape {tuple(np.shape(_as_numpy(actual)))}"
    else:
        same = actual == expected
        shown = f"{actual!r}" if same else f"{actual!r} != {expected!r}"
    if not same:
        _fail(name, shown, demo)
    _ok(name, f"{shown} equal" if hasattr(actual, "shape") else f"{shown}", demo)


def greater(name, value, bound, strict=True, demo=False):
    """Assert value > bound (or >= with strict=False), e.g. accuracy beats a baseline."""
    value, bound = float(value), float(bound)
    holds = value > bound if strict else value >= bound
    op = ">" if strict else ">="
    line = f"{value:.4g} {op} {bound:.4g}"
    if not holds or math.isnan(value):
        _fail(name, f"{value:.4g} not {op} {bound:.4g}", demo)
    _ok(name, line, demo)


def less(name, value, bound, strict=True, demo=False):
    """Assert value < bound (or <= with strict=False), e.g. loss fell below its start."""
    value, bound = float(value), float(bound)
    holds = value < bound if strict else value <= bound
    op = "<" if strict else "<="
    if not holds or math.isnan(value):
        _fail(name, f"{value:.4g} not {op} {bound:.4g}", demo)
    _ok(name, f"{value:.4g} {op} {bound:.4g}", demo)


def true(name, condition, detail="", demo=False):
    """Assert a property holds; `detail` says what was looked at."""
    if not bool(condition):
        _fail(name, detail or "condition is false", demo)
    _ok(name, detail or "holds", demo)


def raises(name, exc_type, fn, *args, demo=False, **kwargs):
    """Assert fn(*args) raises exc_type; prints the error's first line (a planted bug)."""
    try:
        fn(*args, **kwargs)
    except exc_type as err:  # noqa: PERF203 - the point is to catch it
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        _ok(name, f"raised {type(err).__name__}: {shorten(first)}", demo)
        return err
    except Exception as err:  # a different error is a failed check, not a crash
        _fail(name, f"raised {type(err).__name__}, expected {exc_type.__name__}", demo)
    _fail(name, f"did not raise {exc_type.__name__}", demo)


def summary():
    """The line the tests look for: 'checks: N passed' (demonstrations listed apart)."""
    line = f"checks: {len(PASSED)} passed"
    if DEMOS:
        line += f" ({len(DEMOS)} library demonstration{'s' * (len(DEMOS) != 1)} not counted)"
    return line
