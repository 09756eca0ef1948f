"""A third-party integration built on the public toolkit alone, installed through a real entry point.

``tests/plugins/thirdparty/ledger_torchloop`` records a plain PyTorch loop. Each test
installs it the way pip would — the package and a ``.dist-info`` folder declaring its
``labledger`` entry point in a site folder on ``sys.path`` — and trains a tiny model on CPU.
"""

from __future__ import annotations

import ast
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

torch = pytest.importorskip("torch")

import labledger as ll  # noqa: E402
from labledger.integrations.base import IntegrationWarning  # noqa: E402

PACKAGE = Path(__file__).resolve().parent / "thirdparty" / "ledger_torchloop"
ENTRY_POINTS = "[labledger]\ntorchloop = ledger_torchloop.hooks\n"
METADATA = "Metadata-Version: 2.1\nName: ledger-torchloop\nVersion: 1.0\n"


@pytest.fixture
def torchloop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """``ledger_torchloop`` installed in a fresh site folder (the plugin manager finds its entry point)."""
    site = tmp_path / "site"
    shutil.copytree(PACKAGE, site / "ledger_torchloop", ignore=shutil.ignore_patterns("__pycache__"))
    info = site / "ledger_torchloop-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(METADATA)
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    (info / "RECORD").write_text("")
    monkeypatch.syspath_prepend(str(site))
    ll.plugins.get_plugin_manager(fresh=True)
    import ledger_torchloop

    yield ledger_torchloop
    for name in [n for n in sys.modules if n == "ledger_torchloop" or n.startswith("ledger_torchloop.")]:
        del sys.modules[name]


def _train(
    torchloop: ModuleType, steps: int = 12, fail_at: int | None = None, **options: object
) -> list[float]:
    """Fit ``y = 2x + 1`` with SGD; returns the loss of every step."""
    torch.manual_seed(0)
    x = torch.linspace(-1, 1, 32).unsqueeze(1)
    y = 2 * x + 1
    model = torch.nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.5)
    losses = []
    with torchloop.track(model, optimizer, params={"steps": steps, "data/rows": 32}, **options) as tracker:
        for step in range(steps):
            if step == fail_at:
                raise RuntimeError("diverged on purpose")
            optimizer.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            optimizer.step()
            tracker.step(step, loss=loss, lr=optimizer.param_groups[0]["lr"])
            losses.append(loss.item())
    return losses


def _only_run(experiment: str) -> ll.RunView:
    ids = list(ll.runs(experiment)["id"])
    assert len(ids) == 1
    return ll.get_run(ids[0])


def test_it_records_params_every_step_and_the_model(torchloop):
    losses = _train(torchloop, experiment="torchloop", hypothesis="twelve steps fit a line")
    view = _only_run("torchloop")
    assert view.status == "finished"
    assert view.params["steps"] == 12 and view.params["data/rows"] == 32
    assert view.params["model/class"] == "torch.nn.modules.linear.Linear"
    assert view.params["model/parameters"] == 2
    assert view.params["optimizer/class"] == "torch.optim.sgd.SGD"
    assert view.params["optimizer/lr"] == 0.2 and view.params["optimizer/momentum"] == 0.5
    curve = view.metric("loss")
    assert list(curve["step"]) == list(range(12))
    assert list(curve["value"]) == pytest.approx(losses, rel=1e-6)
    assert losses[-1] < losses[0]
    model = next(a for a in view.artifacts if a.name == "model.pt")
    assert model.kind == "model" and model.metadata["class"] == "torch.nn.modules.linear.Linear"
    with model.open() as f:
        weights = torch.load(f, weights_only=True)
    assert set(weights) == {"weight", "bias"}
    assert view.source["origin"] == "ledger_torchloop.track"
    # the entry point's hook module was loaded: it adds torch's version to the run's environment
    assert view.environment["torchloop"] == {"torch": str(torch.__version__)}


def test_inside_an_active_run_it_records_there_and_leaves_it_open(torchloop):
    with ll.start_run("mine") as run:
        _train(torchloop, steps=3)
        assert not run.ended
    view = ll.get_run(run.id)
    assert view.status == "finished" and len(view.metric("loss")) == 3
    assert view.params["optimizer/class"] == "torch.optim.sgd.SGD"
    assert [(e["name"], e["runs"]) for e in ll.experiments()] == [("mine", 1)]  # no run of its own


def test_an_exception_ends_its_run_failed_and_propagates(torchloop):
    with pytest.raises(RuntimeError, match="diverged on purpose"):
        _train(torchloop, fail_at=4, experiment="torchloop-failed")
    view = _only_run("torchloop-failed")
    assert view.status == "failed" and "diverged on purpose" in view.error
    assert len(view.metric("loss")) == 4
    assert not [a for a in view.artifacts if a.name == "model.pt"]  # no model of a failed loop


def test_a_tracking_error_is_one_warning_naming_it_and_training_goes_on(torchloop, monkeypatch):
    monkeypatch.setenv("LABLEDGER_TESTING", "0")
    ended = ll.start_run("ended")
    ended.end()
    with pytest.warns(IntegrationWarning) as seen:
        losses = _train(torchloop, run=ended)
    assert len(losses) == 12
    assert len(seen) == 1 and seen[0].message.integration == "ledger_torchloop"
    assert "could not record the params" in str(seen[0].message)


def test_in_testing_mode_the_tracking_error_raises(torchloop):
    ended = ll.start_run("ended")
    ended.end()
    with pytest.raises(ll.errors.RunFinishedError) as caught:
        _train(torchloop, run=ended)
    assert "LABLEDGER_TESTING" in "".join(caught.value.__notes__)


def _private_uses(path: Path) -> list[str]:
    """Where ``path`` imports or reads a ``_``-prefixed name of labledger."""
    tree = ast.parse(path.read_text(), str(path))
    aliases: set[str] = set()
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "labledger":
                    aliases.add(alias.asname or "labledger")
                    if any(part.startswith("_") for part in alias.name.split(".")):
                        found.append(f"{path.name}:{node.lineno} import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "labledger":
            parts = (node.module or "").split(".")
            names = [a.name for a in node.names]
            if any(p.startswith("_") for p in parts) or any(n.startswith("_") for n in names):
                found.append(f"{path.name}:{node.lineno} from {node.module} import {', '.join(names)}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            root = node.value
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name) and root.id in aliases:
                found.append(f"{path.name}:{node.lineno} {root.id}....{node.attr}")
    return found


def test_it_uses_nothing_private_of_labledger(tmp_path):
    sources = sorted(PACKAGE.rglob("*.py"))
    assert {p.name for p in sources} == {"__init__.py", "hooks.py"}
    assert [use for path in sources for use in _private_uses(path)] == []
    probe = tmp_path / "probe.py"  # the check sees what it is meant to
    probe.write_text(
        "import labledger as ll\nimport labledger.integrations._values\n"
        "from labledger.integrations._safety import safe\nfrom labledger.hooks.manager import _pm\n"
        "ll._active('x')\n"
    )
    assert len(_private_uses(probe)) == 4
