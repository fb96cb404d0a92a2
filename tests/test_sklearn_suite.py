"""scikit-learn's own MLP test module, run on numba-dense's estimators.

The installed ``sklearn/neural_network/tests/test_mlp.py`` is read, its one import of the
estimators is replaced by ours (nothing else changes), and its tests are executed here:
pytest collects them from this module's namespace, their parametrize marks travelling on the
function objects. The tests that read scikit-learn's private attributes are skipped, each
naming what it reads. The whole file is skipped when scikit-learn's tests are not installed.
"""

import importlib.util
import sys
import types

import pytest

pytest.importorskip("sklearn")

_IMPORT = "from sklearn.neural_network import MLPClassifier, MLPRegressor"
_OURS = "from numba_dense.model.interfaces.estimators import MLPClassifier, MLPRegressor"

#: The tests that read scikit-learn's private attributes, and what each reads.
PRIVATE = {
    "test_fit": "builds an unfitted estimator's state by hand, private parts included "
                "(_coef_grads, _intercept_grads, _coef_velocity, _no_improvement_count), "
                "then calls partial_fit",
    "test_gradient": "calls scikit-learn's private _loss_grad_lbfgs",
    "test_learning_rate_warmstart": "reads scikit-learn's private _optimizer.learning_rate",
    "test_adaptive_learning_rate": "reads scikit-learn's private _optimizer.learning_rate",
    "test_n_iter_no_change": "reads scikit-learn's private _no_improvement_count",
    "test_n_iter_no_change_inf": "reads scikit-learn's private _no_improvement_count",
}


def _load():
    try:
        spec = importlib.util.find_spec("sklearn.neural_network.tests.test_mlp")
    except ImportError:
        spec = None
    if spec is None or spec.origin is None:
        return None
    with open(spec.origin, encoding="utf-8") as f:
        source = f.read()
    lines = source.splitlines(keepends=True)
    hits = [i for i, line in enumerate(lines) if line.rstrip("\n") == _IMPORT]
    assert len(hits) == 1, "scikit-learn's test_mlp.py no longer has the line %r" % _IMPORT
    lines[hits[0]] = _OURS + "\n"
    module = types.ModuleType("sklearn_test_mlp_on_numba_dense")
    module.__file__ = spec.origin
    sys.modules[module.__name__] = module
    exec(compile("".join(lines), spec.origin, "exec"), module.__dict__)
    return module


_suite = _load()
if _suite is None:
    pytest.skip("scikit-learn's tests (sklearn/neural_network/tests/test_mlp.py) are not "
                "installed", allow_module_level=True)


@pytest.fixture
def global_random_seed():
    """scikit-learn's conftest fixture, at its default (seed 42)."""
    return 42


def _expose():
    names = [name for name in vars(_suite) if name.startswith("test_")
             and callable(vars(_suite)[name])]
    for name in names:
        test = vars(_suite)[name]
        if name in PRIVATE:
            test = pytest.mark.skip(reason="reads scikit-learn's private attributes: "
                                    + PRIVATE[name])(test)
        globals()[name] = test
    missing = set(PRIVATE) - set(names)
    assert not missing, "scikit-learn's test_mlp.py no longer has %s" % sorted(missing)
    return names


SUITE_TESTS = _expose()
