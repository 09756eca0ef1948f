"""Entry-point plugins are found without importlib.metadata, and exactly as pluggy finds them through it.

Each test installs fake distributions the way pip lays them out (a ``*.dist-info`` or
``*.egg-info`` folder with ``METADATA`` and ``entry_points.txt`` next to the plugin's module)
in a folder put first on ``sys.path``, then compares the plugin manager's result with what
pluggy's own ``load_setuptools_entrypoints`` (which reads ``importlib.metadata``) gives.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pluggy
import pytest

import labledger as ll
from labledger.hooks import entry_points as eps
from labledger.hooks import manager as plugins
from labledger.hooks import specs as hookspecs

GROUP = plugins.ENTRY_POINT_GROUP

PLUGIN = """
import labledger as ll

@ll.hookimpl
def labledger_collect_environment():
    return {"from": __name__}
"""

PLUGIN_CLASS = """
import labledger as ll

class Hooks:
    @ll.hookimpl
    def labledger_collect_environment(self):
        return {"from": "class"}

hooks = Hooks()
"""


def _dist(
    site: Path, folder: str, name: str, version: str, entry_points: str, modules: dict[str, str]
) -> Path:
    info = site / folder
    info.mkdir(parents=True)
    (info / ("PKG-INFO" if folder.endswith(".egg-info") else "METADATA")).write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    )
    (info / "entry_points.txt").write_text(entry_points)
    for module, text in modules.items():
        (site / f"{module}.py").write_text(text)
    return info


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh site folder first on ``sys.path``; the modules imported from it are forgotten after."""
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    before = set(sys.modules)
    yield folder
    for name in set(sys.modules) - before:
        if name.startswith("ep_scan_"):
            del sys.modules[name]


def _with_pluggy() -> list[tuple[str, str, str, str]]:
    """What pluggy's own loader registers, through importlib.metadata: (name, module, dist, version)."""
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    pm.load_setuptools_entrypoints(GROUP)
    return _registered(pm)


def _registered(pm: pluggy.PluginManager) -> list[tuple[str, str, str, str]]:
    dists = {id(p): d for p, d in pm.list_plugin_distinfo()}
    return [
        (
            name,
            getattr(plugin, "__name__", type(plugin).__name__),
            dists[id(plugin)].project_name,
            dists[id(plugin)].version,
        )
        for name, plugin in pm.list_name_plugin()
        if id(plugin) in dists
    ]


def _with_labledger() -> list[tuple[str, str, str, str]]:
    pm = plugins.LedgerPluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    pm.load_setuptools_entrypoints(GROUP)
    return _registered(pm)


def test_the_installed_entry_points_are_the_ones_importlib_metadata_lists():
    for group in (GROUP, "console_scripts", "pytest11"):
        expected = [
            (ep.name, ep.value, str(dist._path))  # type: ignore[attr-defined]
            for dist in importlib.metadata.distributions()
            for ep in dist.entry_points
            if ep.group == group
        ]
        assert [(ep.name, ep.value, ep.dist) for ep in eps.entry_points(group)] == expected
    assert {"sklearn", "xgboost", "lightning", "keras"} <= {ep.name for ep in eps.entry_points(GROUP)}


def test_the_plugin_manager_loads_the_same_plugins_as_pluggy_does(site):
    _dist(
        site,
        "ep_scan_one-1.0.dist-info",
        "ep-scan-one",
        "1.0",
        f"[{GROUP}]\none = ep_scan_one\n",
        {"ep_scan_one": PLUGIN},
    )
    _dist(
        site,
        "EP_Scan.Two-2.5.dist-info",
        "EP_Scan.Two",
        "2.5",
        "# a comment\n[console_scripts]\nep-two = ep_scan_two:main\n\n"
        f"[{GROUP}]\n  two = ep_scan_two  \ncls = ep_scan_cls : hooks [extra]\n"
        "; not a comment = ep_scan_semi\n",
        {"ep_scan_two": PLUGIN, "ep_scan_cls": PLUGIN_CLASS, "ep_scan_semi": PLUGIN},
    )
    _dist(
        site,
        "ep_scan_old-0.1-py3.11.egg-info",
        "ep-scan-old",
        "0.1",
        f"[{GROUP}]\nold = ep_scan_old\n",
        {"ep_scan_old": PLUGIN},
    )
    _dist(site, "ep_scan_none-1.0.dist-info", "ep-scan-none", "1.0", "[console_scripts]\nx = y:z\n", {})
    theirs = _with_pluggy()
    for name in [n for n in sys.modules if n.startswith("ep_scan_")]:
        del sys.modules[name]
    ours = _with_labledger()
    assert ours == theirs
    names = [name for name, *_ in ours]
    assert {"one", "two", "cls", "old", "; not a comment"} <= set(names)
    assert ("cls", "Hooks", "EP_Scan.Two", "2.5") in ours


def test_a_name_taken_by_an_earlier_distribution_is_skipped_as_pluggy_skips_it(site, tmp_path, monkeypatch):
    later = tmp_path / "later"
    later.mkdir()
    monkeypatch.syspath_prepend(str(site))  # site first, then later
    sys.path.insert(sys.path.index(str(site)) + 1, str(later))
    _dist(
        site,
        "ep_scan_a-1.0.dist-info",
        "ep-scan-a",
        "1.0",
        f"[{GROUP}]\ndup = ep_scan_a\n",
        {"ep_scan_a": PLUGIN},
    )
    _dist(
        later,
        "ep_scan_b-1.0.dist-info",
        "ep-scan-b",
        "1.0",
        f"[{GROUP}]\ndup = ep_scan_b\n",
        {"ep_scan_b": PLUGIN},
    )
    try:
        ours = _with_labledger()
        assert ours == _with_pluggy()
        assert ("dup", "ep_scan_a", "ep-scan-a", "1.0") in ours
        assert "ep_scan_b" not in sys.modules  # never imported
    finally:
        sys.path.remove(str(later))


def test_a_distribution_in_a_zip_file_is_read_through_importlib_metadata(site, tmp_path, monkeypatch):
    archive = tmp_path / "plugins.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("ep_scan_zipped.py", PLUGIN)
        z.writestr(
            "ep_scan_zipped-3.0.dist-info/METADATA",
            "Metadata-Version: 2.1\nName: ep-scan-zipped\nVersion: 3.0\n",
        )
        z.writestr("ep_scan_zipped-3.0.dist-info/entry_points.txt", f"[{GROUP}]\nzipped = ep_scan_zipped\n")
    monkeypatch.syspath_prepend(str(archive))
    importlib.invalidate_caches()
    ours = _with_labledger()
    assert ("zipped", "ep_scan_zipped", "ep-scan-zipped", "3.0") in ours
    assert ours == _with_pluggy()


def test_a_finder_that_knows_other_distributions_is_asked_too(site, tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    _dist(
        elsewhere,
        "ep_scan_far-1.0.dist-info",
        "ep-scan-far",
        "1.0",
        f"[{GROUP}]\nfar = ep_scan_far\n",
        {"ep_scan_far": PLUGIN},
    )

    class Finder:
        @staticmethod
        def find_spec(fullname, path=None, target=None):
            return None

        @staticmethod
        def find_distributions(context=None):
            return iter([importlib.metadata.PathDistribution(elsewhere / "ep_scan_far-1.0.dist-info")])

    monkeypatch.setattr(sys, "meta_path", [*sys.meta_path, Finder])
    monkeypatch.syspath_prepend(str(elsewhere))  # the module itself imports from there
    ours = _with_labledger()
    assert ours == _with_pluggy()
    assert ours.count(("far", "ep_scan_far", "ep-scan-far", "1.0")) == 1  # the first wins, as in pluggy


def test_a_blocked_entry_point_is_never_imported(site, monkeypatch):
    _dist(
        site,
        "ep_scan_blocked-1.0.dist-info",
        "ep-scan-blocked",
        "1.0",
        f"[{GROUP}]\nblocked = ep_scan_blocked\n",
        {"ep_scan_blocked": PLUGIN},
    )
    monkeypatch.setenv("LABLEDGER_DISABLE_PLUGINS", "blocked")
    pm = plugins.get_plugin_manager(fresh=True)
    assert pm.is_blocked("blocked") and not pm.has_plugin("blocked")
    assert "ep_scan_blocked" not in sys.modules


def test_a_plugin_that_cannot_be_imported_fails_as_with_pluggy(site):
    _dist(
        site,
        "ep_scan_broken-1.0.dist-info",
        "ep-scan-broken",
        "1.0",
        f"[{GROUP}]\nbroken = ep_scan_missing_module\n",
        {},
    )
    with pytest.raises(ModuleNotFoundError, match="ep_scan_missing_module"):
        _with_pluggy()
    with pytest.raises(ModuleNotFoundError, match="ep_scan_missing_module"):
        _with_labledger()


def test_list_plugins_names_the_distribution_of_a_scanned_entry_point(site):
    _dist(
        site,
        "ep_scan_listed-4.2.dist-info",
        "ep-scan-listed",
        "4.2",
        f"[{GROUP}]\nlisted = ep_scan_listed\n",
        {"ep_scan_listed": PLUGIN},
    )
    pm = plugins.get_plugin_manager(fresh=True)
    listed = {p["name"]: p for p in ll.plugins.list_plugins()}
    assert listed["listed"]["source"] == "entry point"
    assert (listed["listed"]["distribution"], listed["listed"]["version"]) == ("ep-scan-listed", "4.2")
    assert listed["sklearn"]["distribution"] == "labledger"
    (dist,) = [d for p, d in pm.list_plugin_distributions() if p is sys.modules["ep_scan_listed"]]
    assert isinstance(dist, importlib.metadata.Distribution) and dist.metadata["Name"] == "ep-scan-listed"
    assert plugins.call_each("labledger_collect_environment")["listed"] == {"from": "ep_scan_listed"}


def test_building_the_plugin_manager_does_not_import_importlib_metadata():
    code = (
        "import sys, labledger as ll\n"
        "ll.plugins.get_plugin_manager()\n"
        "print('importlib.metadata' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
