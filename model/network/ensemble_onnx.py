"""ONNX export of an ``Ensemble``: one graph that runs every member and averages them.

Built from ``onnx_export``'s pieces: the inputs (``X``, or a table's raw columns with its
preprocessing as nodes, once for all members), each member's layers (``network_nodes``) and
output transform (``regression_nodes``: the member's own target scaling and ``exp``), then

- regression: ``variable`` = ``Sum`` of the members' outputs ``Div`` K;
- classifiers: ``probabilities`` = ``Sum`` of the members' probabilities (``Softmax``;
  ``[1 - p, p]`` for one sigmoid; the sigmoids for several) ``Div`` K, and ``label`` its
  ``ArgMax`` (softmax, one sigmoid) or ``probabilities > 0.5`` (several sigmoids), mapped to a
  table's class labels through a ``Gather`` as ``Ensemble.predict`` maps them.

The graph sums in the networks' dtype where ``Ensemble.predict`` averages in float64 and
rounds once; the two agree to a few units in the last place of the dtype.
"""

import numpy as np

from ...kernels.errors import InvalidTypeError, InvalidValueError
from .onnx_export import (_Builder, _onnx, check_net, check_path_and_opset,
                          classifier_outputs, finish_model, graph_inputs, network_nodes,
                          regression_nodes, regression_outputs, table_classes)


def _probabilities(b, net, z):
    """A classifier's probabilities of its logits ``z``, as ``MLP.predict_proba`` gives them."""
    if net.output == "softmax":
        return b.op("Softmax", [z], axis=1)
    p = b.op("Sigmoid", [z])
    if net.n_outputs == 1:
        one_minus = b.op("Sub", [b.const("one", np.ones(1, net.dtype)), p])
        return b.op("Concat", [one_minus, p], axis=1)
    return p


def _mean(b, names, dtype, out):
    total = names[0] if len(names) == 1 else b.op("Sum", names)
    return b.op("Div", [total, b.const("k", np.array([len(names)], dtype))], out=out)


def to_onnx(ensemble, path=None, opset=None, name="numba_dense_ensemble"):
    """The ONNX ``ModelProto`` of ``ensemble`` (see the module docstring), also written to
    ``path`` (atomically, a ``.onnx`` name) when given. Inputs and outputs are those of
    ``MLP.to_onnx`` for one of the members. Raises ``ImportError`` without the onnx package,
    ``TypeError`` for something that is not an ``Ensemble``, ``ValueError`` for a path that
    is not a writable ``.onnx`` name, a member with NaN parameters or members whose table
    preprocessings differ, ``OnnxExportError`` for a part the graph cannot express."""
    members = getattr(ensemble, "members", None)
    if not isinstance(members, list) or not members:
        raise InvalidTypeError("ensemble must be a numba_dense Ensemble, got %s"
                               % type(ensemble).__name__)
    preps = [check_net(m) for m in members]
    prep = preps[0]
    texts = {None if p is None else p.to_json() for p in preps}
    if len(texts) > 1:
        raise InvalidValueError("the members' table preprocessings differ; an ensemble's "
                                "graph reads the columns once")
    opset = check_path_and_opset(path, opset)
    _onnx()
    first = members[0]
    dtype = first.dtype
    b = _Builder(taken=[c["name"] for c in prep.columns] if prep is not None else ["X"])
    inputs, x = graph_inputs(b, prep, dtype, first.n_inputs)
    if first.is_classifier:
        probs = [_probabilities(b, m, network_nodes(b, m, x)) for m in members]
        mean = _mean(b, probs, dtype, "probabilities")
        if first.output == "softmax" or first.n_outputs == 1:
            index = b.op("ArgMax", [mean], axis=1, keepdims=0)
        else:
            half = b.const("half", np.array([0.5], dtype))
            index = b.op("Cast", [b.op("Greater", [mean, half])], to=7)
        classes = table_classes(prep)
        if classes is None:
            b.op("Identity", [index], out="label")
        else:
            b.op("Gather", [b.const("classes", classes), index], out="label", axis=0)
        outputs = classifier_outputs(first, classes)
    else:
        values = [regression_nodes(b, m, network_nodes(b, m, x), b.name("member%d" % k))
                  for k, m in enumerate(members)]
        _mean(b, values, dtype, "variable")
        outputs = regression_outputs(first)
    return finish_model(b, name, inputs, outputs, opset, repr(ensemble), path)
