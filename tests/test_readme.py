"""The README's commands are the ones CI runs."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def fenced_after(text: str, marker: str) -> str:
    """The first fenced block after the line containing ``marker``."""
    rest = text[text.index(marker):]
    start = rest.index("```\n") + 4
    return rest[start:rest.index("```", start)].strip()


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    command = fenced_after(readme, "Run the tests")
    assert "pytest" in command
    ci = (ROOT / ".ci" / "run").read_text()
    assert command in ci


def test_readme_main_job_is_xpnet_train():
    readme = (ROOT / "README.md").read_text()
    assert fenced_after(readme, "Run the main job").endswith("xpnet train")
