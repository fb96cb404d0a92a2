"""The package's shape: one installed name, no import cycle, benchmarks on public names.

The repository keeps ``kernels/`` and ``model/`` at its top level; installed, they are
``numba_dense.kernels`` and ``numba_dense.model`` (pyproject.toml's ``package-dir``), so a
user's own ``model.py`` or ``kernels.py`` shadows nothing.
"""

import ast
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = {"kernels": "numba_dense.kernels", "model": "numba_dense.model",
            "numba_dense": "numba_dense"}


def _run(args, cwd):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=env)


def test_a_users_own_model_and_kernels_files_change_nothing(tmp_path):
    for name in ("model", "kernels"):
        (tmp_path / (name + ".py")).write_text("raise SystemExit('the user file %s.py ran')\n"
                                               % name)
    code = ("import sys\n"
            "import numba_dense\n"
            "from numba_dense import MLP, MLPRegressor, kernels\n"
            "import numba_dense.model.interfaces.cli, numba_dense.model.interfaces.estimators\n"
            "import numba_dense.model.training.distributed, numba_dense.model.data.convert\n"
            "assert 'model' not in sys.modules and 'kernels' not in sys.modules, sys.modules\n"
            "print(kernels.__name__, MLP.__module__)\n")
    result = _run(["-c", code], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["numba_dense.kernels", "numba_dense.model.network.mlp"]
    result = _run(["-m", "numba_dense", "train", "--rows", "500", "--hidden-sizes", "4",
                   "--epochs", "1"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "epoch 1/1" in result.stdout


def _module_imports(path, package):
    """The package modules a source file imports (top level and inside functions)."""
    tree = ast.parse(open(path).read(), path)
    here = package + "." + os.path.splitext(os.path.basename(path))[0]
    if here.endswith(".__init__"):
        here = here[:-len(".__init__")]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")
                keep = len(base) - node.level + (1 if path.endswith("__init__.py") else 0)
                base = base[:keep]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                found.add(module + "." + alias.name)
                found.add(module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def _source_files():
    """{module name: path} of every source file of the package, subpackages included."""
    modules = {}
    for folder, package in PACKAGES.items():
        for dirpath, _, files in os.walk(os.path.join(ROOT, folder)):
            sub = os.path.relpath(dirpath, os.path.join(ROOT, folder))
            if "__pycache__" in sub:
                continue
            prefix = package if sub == "." else package + "." + sub.replace(os.sep, ".")
            for name in files:
                if name.endswith(".py"):
                    module = prefix + ("" if name == "__init__.py" else "." + name[:-3])
                    modules[module] = os.path.join(dirpath, name)
    return modules


def _graph():
    modules = _source_files()
    graph = {}
    for module, path in modules.items():
        package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
        graph[module] = {m for m in _module_imports(path, package)
                         if m in modules and m != module}
    return graph


def test_no_import_cycle_between_modules():
    """Package __init__ files re-export; every other edge must form a DAG."""
    graph = _graph()
    inits = {m for m, path in _source_files().items() if path.endswith("__init__.py")}
    edges = {m: {d for d in deps if d not in inits} for m, deps in graph.items()
             if m not in inits}
    state = {}

    def visit(node, trail):
        if state.get(node) == "done":
            return
        if state.get(node) == "open":
            cycle = trail[trail.index(node):] + [node]
            pytest.fail("import cycle: " + " -> ".join(cycle))
        state[node] = "open"
        for dep in sorted(edges.get(node, ())):
            visit(dep, trail + [node])
        state[node] = "done"
    for node in sorted(edges):
        visit(node, [])
    assert "numba_dense.model.data.convert" in edges and edges["numba_dense.model.network.mlp"]


#: The model's subpackages, each importing only those after it (docs/development.md), and
#: the edges against that order: a checkpoint is a saved network plus training state,
#: reading a large table shows training's progress bar, and writing a file holds a Ctrl-C
#: until the file is in place as training's blocks do (``training.signals``).
LAYERS = ("interfaces", "network", "training", "data")
ALLOWED_UPWARD = {
    ("numba_dense.model.training.checkpoints", "numba_dense.model.network.persistence"),
    ("numba_dense.model.data.tabular", "numba_dense.model.training.progress"),
    ("numba_dense.model.data.paths", "numba_dense.model.training.signals"),
    ("numba_dense.model.data.sources", "numba_dense.model.training.signals")}


def test_model_subpackages_import_downwards():
    def layer(module):
        parts = module.split(".")
        return LAYERS.index(parts[2]) if len(parts) > 3 and parts[2] in LAYERS else None
    upward = set()
    for module, deps in _graph().items():
        for dep in deps:
            a, b = layer(module), layer(dep)
            if a is not None and b is not None and b < a:
                upward.add((module, dep))
    assert upward == ALLOWED_UPWARD
    # and kernels never import the model
    assert not [(m, d) for m, deps in _graph().items() if m.startswith("numba_dense.kernels")
                for d in deps if d.startswith("numba_dense.model")]


def test_the_wheel_holds_every_package_and_imports_without_the_editable_loader(tmp_path):
    """What ``pip install .`` (not ``-e``) installs: the wheel built from pyproject.toml. It
    held only numba_dense, .kernels and .model (the subpackages were not listed; the
    editable install's loader hid it), so ``from numba_dense import MLP`` failed."""
    import sysconfig
    import zipfile
    import shutil
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    # built from a copy: setuptools keeps a build/ folder in the tree it builds, whose
    # files from an earlier build would go into this wheel too
    tree = tmp_path / "tree"
    tree.mkdir()
    for name in ("pyproject.toml", "setup.cfg", "README.md"):
        shutil.copy(os.path.join(root, name), tree / name)
    for name in ("numba_dense", "kernels", "model"):
        shutil.copytree(os.path.join(root, name), tree / name,
                        ignore=shutil.ignore_patterns("__pycache__"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                            "--no-build-isolation", "-w", str(tmp_path), str(tree)],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next(tmp_path.glob("*.whl"))
    folders = {os.path.dirname(n) for n in zipfile.ZipFile(wheel).namelist()
               if n.endswith("/__init__.py")}
    sources = {"numba_dense"} | {
        "numba_dense/" + os.path.relpath(folder, root)
        for top in ("kernels", "model") for folder, _, files in os.walk(os.path.join(root, top))
        if "__init__.py" in files}
    assert sources <= folders, sorted(sources - folders)
    unpacked = tmp_path / "unpacked"
    zipfile.ZipFile(wheel).extractall(unpacked)
    # -S: no site processing, so no editable-install loader; the libraries' folder is put
    # on the path by hand, after the unpacked wheel
    code = ("import sys; sys.path[:0] = [%r, %r]; import numba_dense; "
            "from numba_dense import MLP, MLPRegressor; from numba_dense.model.data import "
            "tabular; from numba_dense.model.interfaces import cli; "
            "print(numba_dense.__file__)" % (str(unpacked), sysconfig.get_paths()["purelib"]))
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                         timeout=300, cwd=str(tmp_path))
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith(str(unpacked)), out.stdout


def test_the_jit_switched_off_is_refused_in_one_line_at_import():
    """NUMBA_DISABLE_JIT=1, Numba's debugging switch, made the first kernel's decoration
    fail with an AttributeError deep in kernels._checks; it is now named at import."""
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    out = subprocess.run([sys.executable, "-c", "import numba_dense"], capture_output=True,
                         text=True, timeout=120, env=env)
    assert out.returncode != 0
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: numba_dense needs Numba's compiler") and \
        "NUMBA_DISABLE_JIT=1" in last, out.stderr[-2000:]


def test_the_console_script_runs():
    """``numba-dense`` (pyproject's [project.scripts]) as pip installs it: it pointed at a
    module that had moved (numba_dense.model.cli), a ModuleNotFoundError for its users."""
    from importlib.metadata import entry_points
    found = [e for e in entry_points(group="console_scripts") if e.name == "numba-dense"]
    assert found and callable(found[0].load()), found
    script = os.path.join(os.path.dirname(sys.executable), "numba-dense")
    if os.path.exists(script):  # installed into this interpreter's environment
        out = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0 and "train" in out.stdout, out.stderr[-2000:]


def test_no_module_imports_the_old_top_level_names():
    paths = list(_source_files().values()) + [
        os.path.join(ROOT, folder, name) for folder in ("tests", "benchmarks")
        for name in os.listdir(os.path.join(ROOT, folder)) if name.endswith(".py")]
    for path in paths:
        for node in ast.walk(ast.parse(open(path).read(), path)):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module] if isinstance(node, ast.ImportFrom) and not node.level
                     else [])
            for module in names:
                top = (module or "").split(".")[0]
                assert top not in ("kernels", "model"), "%s imports %s" % (path, module)


def test_benchmarks_use_only_public_names():
    folder = os.path.join(ROOT, "benchmarks")
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".py"):
            continue
        path = os.path.join(folder, name)
        for node in ast.walk(ast.parse(open(path).read(), path)):
            if isinstance(node, ast.ImportFrom):
                private = [a.name for a in node.names if a.name.startswith("_")]
                module_private = any(part.startswith("_") for part in
                                     (node.module or "").split(".") if part != "__future__")
                assert not private and not module_private, \
                    "%s imports %s from %s" % (name, private or "", node.module)
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                    and not node.attr.startswith("__") and isinstance(node.value, ast.Name)
                    and node.value.id in ("kernels", "model")):
                pytest.fail("%s uses %s.%s" % (name, node.value.id, node.attr))


def test_every_kernel_has_a_numpy_twin_with_its_signature():
    """kernels.reference mirrors the public kernels: same names, same parameters."""
    import inspect

    from numba_dense import kernels
    from numba_dense.kernels import reference
    compiled = [name for name in kernels.__all__ if hasattr(getattr(kernels, name), "py_func")]
    assert len(compiled) > 20
    for name in compiled:
        twin = getattr(reference, name, None)
        assert twin is not None, "kernels.reference has no %s" % name
        assert (list(inspect.signature(getattr(kernels, name).py_func).parameters)
                == list(inspect.signature(twin).parameters)), name


def test_the_twins_of_the_size_and_step_kernels_agree():
    import numpy as np

    from numba_dense import kernels
    from numba_dense.kernels import reference
    sizes = np.array([7, 5, 3])
    assert reference.param_count(sizes) == kernels.param_count(sizes) == 58
    np.testing.assert_array_equal(reference.layer_offsets(sizes), kernels.layer_offsets(sizes))
    rng = np.random.default_rng(0)
    for name, hyperparameters in (("sgd", dict(momentum=0.9, weight_decay=0.01, nesterov=True)),
                                  ("adamw", dict(weight_decay=0.01))):
        p, g = rng.standard_normal(10), rng.standard_normal(10)
        p2 = p.copy()
        mine = kernels.optimizer(name, p, 0.01, **hyperparameters)
        twin = kernels.optimizer(name, p2, 0.01, **hyperparameters)
        for _ in range(2):
            kernels.optimizer_step(p, g, mine)
            reference.optimizer_step(p2, g, twin)
        assert mine.steps[0] == twin.steps[0] == 2
        np.testing.assert_allclose(p, p2, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(mine.state, twin.state, rtol=1e-12, atol=1e-12)


def test_no_public_function_takes_more_than_8_positional_parameters():
    """Options travel as records and keywords (issue 21): every public function, method and
    kernel of the package, model included, takes at most 8 positional parameters."""
    import importlib
    import inspect
    wide = []
    for module_name in sorted(_source_files()):
        if module_name.rsplit(".", 1)[-1].startswith("_"):
            continue
        module = importlib.import_module(module_name)
        for name, obj in vars(module).items():
            if name.startswith("_"):
                continue
            functions = []
            if hasattr(obj, "py_func"):
                functions = [(name, obj.py_func)]
            elif inspect.isfunction(obj) and obj.__module__ == module_name:
                functions = [(name, obj)]
            elif inspect.isclass(obj) and obj.__module__ == module_name:
                functions = [(name + "." + n, f) for n, f in vars(obj).items()
                             if inspect.isfunction(f) and (not n.startswith("_")
                                                           or n == "__init__")]
            for label, function in functions:
                positional = [p for p in inspect.signature(function).parameters.values()
                              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                              and p.name not in ("self", "cls")]
                if len(positional) > 8:
                    wide.append("%s.%s (%d)" % (module_name, label, len(positional)))
    assert not wide, wide


def test_every_error_template_in_the_kernels_gets_one_value_per_placeholder():
    """Compiled kernels raise ``Error(template, *values)`` and the message is made in Python
    (``kernels.errors.NumbaDenseError``); a template whose placeholders and values disagree
    would show the raw template instead of the message. Checked on the source, since most of
    these errors are raised only by inputs no test passes."""
    import re
    import numba_dense.kernels as kernels_package
    folder = os.path.dirname(kernels_package.__file__)
    placeholder = re.compile(r"%(?:%|[-#0 +]*\d*(?:\.\d+)?[sdrgfe])")
    templates, wrong = 0, []
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".py"):
            continue
        with open(os.path.join(folder, name)) as f:
            tree = ast.parse(f.read())
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call)
                    and isinstance(node.exc.func, ast.Name)
                    and node.exc.func.id.endswith("Error") and len(node.exc.args) > 1
                    and isinstance(node.exc.args[0], ast.Constant)
                    and isinstance(node.exc.args[0].value, str)):
                continue
            templates += 1
            found = [p for p in placeholder.findall(node.exc.args[0].value) if p != "%%"]
            if len(found) != len(node.exc.args) - 1:
                wrong.append("%s:%d (%d placeholders, %d values)" % (
                    name, node.lineno, len(found), len(node.exc.args) - 1))
    assert templates > 40 and not wrong, wrong


def test_an_error_template_makes_its_message_in_python():
    from numba_dense.kernels.errors import InvalidValueError, TooLargeError
    assert str(InvalidValueError("%s: lr must be positive, got %g", "k", -0.0)) == \
        "k: lr must be positive, got -0"
    assert str(TooLargeError("sizes %s", np.array([3, 4], np.int64))) == "sizes [3, 4]"
    assert str(InvalidValueError("50% of %s")) == "50% of %s"  # one argument: as given
    assert InvalidValueError("a", "b").args == ("a", "b")  # no placeholder: kept
