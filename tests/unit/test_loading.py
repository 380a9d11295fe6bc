"""Stage.load / Pipeline.load through the loader looprunner.definitions installs."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import looprunner.definitions
from looprunner.errors import LooprunnerError
from looprunner.models import Pipeline, Stage
from looprunner.models.loading import install_loader, loader
from tests.conftest import REPO


class FakeLoader:
    def __init__(self, stage: object) -> None:
        self.stage = stage
        self.calls: list[tuple[str | Path, Path]] = []

    def load_stage(self, name_or_path: str | Path, project: Path) -> object:
        self.calls.append((name_or_path, project))
        return self.stage

    def load_pipeline(self, name_or_path: str | Path, project: Path) -> object:
        self.calls.append((name_or_path, project))
        return Pipeline.loop(Stage(name="from-fake"))


@pytest.fixture
def restore_loader() -> Iterator[None]:
    previous = install_loader(None)
    install_loader(previous)
    yield
    install_loader(previous)


def test_importing_definitions_installs_the_file_loader() -> None:
    assert isinstance(loader(), looprunner.definitions.DefinitionFiles)


def test_stage_and_pipeline_load_ask_the_installed_loader(restore_loader: None) -> None:
    fake = FakeLoader(Stage(name="work"))
    install_loader(fake)
    assert Stage.load("work", project="somewhere") == Stage(name="work")
    assert Pipeline.load("p.yaml", project="somewhere").name == "from-fake"
    assert fake.calls == [("work", Path("somewhere")), ("p.yaml", Path("somewhere"))]


def test_a_loader_returning_something_else_is_refused(restore_loader: None) -> None:
    install_loader(FakeLoader("not a stage"))
    with pytest.raises(LooprunnerError, match="not a Stage"):
        Stage.load("work")


def test_without_a_loader_load_says_what_to_import(restore_loader: None) -> None:
    install_loader(None)
    with pytest.raises(LooprunnerError, match=r"import looprunner\.definitions"):
        Stage.load("work")
    with pytest.raises(LooprunnerError, match=r"import looprunner\.definitions"):
        Pipeline.load("refine")


def test_models_alone_import_no_file_reader_and_the_package_root_installs_one(
    tmp_path: Path,
) -> None:
    stage = tmp_path / ".looprunner" / "stages" / "work"
    stage.mkdir(parents=True)
    (stage / "stage.yaml").write_text("delay: 1\n", encoding="utf-8")
    (stage / "prompt.md").write_text("Work.\n", encoding="utf-8")
    script = textwrap.dedent(
        f"""
        import sys
        from looprunner.errors import LooprunnerError
        from looprunner.models import Stage
        assert "looprunner.definitions" not in sys.modules
        assert "looprunner.convert" not in sys.modules
        try:
            Stage.load("work", project={str(tmp_path)!r})
        except LooprunnerError as exc:
            print("refused:", exc)
        from looprunner import Stage as PublicStage
        assert PublicStage is Stage
        print("loaded:", PublicStage.load("work", project={str(tmp_path)!r}).delay)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "refused: no definition loader is installed" in result.stdout
    assert "loaded: 1.0" in result.stdout
