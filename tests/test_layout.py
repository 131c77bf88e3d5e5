"""The layout keeps its promises: data flows one way (transport -> voice -> transport), the QA tool is a client the
server never imports, and the repository stands alone."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("voice", "telephony", "qa")


def _modules(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


def _imports(path: Path) -> list[tuple[str, ast.AST]]:
    """Every module `path` imports, with the node (absolute imports only: the project uses no relative ones)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, node))
    return found


def _top(module: str) -> str:
    return module.split(".", 1)[0]


def test_voice_imports_neither_the_server_nor_the_qa_tool():
    offending = [
        f"{path.relative_to(REPO)}: {module}"
        for path in _modules("voice")
        for module, _node in _imports(path)
        if _top(module) in ("telephony", "qa")
    ]
    assert offending == []


def test_the_server_never_imports_the_qa_tool_at_module_level():
    offending = []
    for path in _modules("telephony"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:  # module level only: the `replay` command imports qa lazily, guarded
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                offending += [f"{path.relative_to(REPO)}: {name}" for name in names if name and _top(name) == "qa"]
    assert offending == []


def test_no_code_reads_the_team_scratch_folder_beside_the_repository():
    suspicious = []
    for folder in (*PACKAGES, "tests", "benchmarks", "audio_fixtures"):
        for path in (REPO / folder).rglob("*.py"):
            if path == Path(__file__):
                continue
            text = path.read_text(encoding="utf-8")
            if '"shared"' in text or "../shared" in text or "parents[2]" in text:
                suspicious.append(str(path.relative_to(REPO)))
    assert suspicious == []


# A meta-path finder that refuses the QA extra's libraries, as an install without `[qa]` would (httpx is not among them:
# the server fetches voicemails with it).
_WITHOUT_QA_EXTRA = """
import sys
class _NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"jinja2", "rich", "qa"}:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, _NotInstalled())
from telephony.app import create_app
from telephony.settings import load_settings
app = create_app(load_settings())
assert app.url_path_for("media") == "/twilio/media"
from telephony.cli import main
code = main(["replay", "audio_fixtures/calls"])
print("replay exit", code)
"""


@pytest.mark.slow  # a Python subprocess
def test_the_server_builds_without_the_qa_extra_and_replay_says_what_to_install(tmp_path: Path):
    env = {**os.environ, "VOICE_AGENT_DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-c", _WITHOUT_QA_EXTRA], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "replay exit 2" in result.stdout
    assert "pip install -e '.[qa]'" in result.stderr


@pytest.mark.parametrize("package", PACKAGES)
def test_every_package_folder_is_a_package(package: str):
    folders = {path.parent for path in _modules(package)} - {REPO / package / "storage" / "migrations" / "versions"}
    missing = [str(folder.relative_to(REPO)) for folder in folders if not (folder / "__init__.py").exists()]
    assert missing == []


def test_voice_names_no_transport():
    # A second transport (a browser at 16 kHz, SIP) must not need to change the core: the phone line's codec,
    # rate and provider are the transport's parameters, named only under telephony/.
    pattern = re.compile(r"twilio|mu-?law|8 ?khz|8000|8_000|streamsid", re.IGNORECASE)
    mentions = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for path in _modules("voice")
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if pattern.search(line)
    ]
    assert mentions == []
