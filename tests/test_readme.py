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


def test_readme_says_how_a_default_network_gets_to_the_gpu():
    """A network built without xp= stays on NumPy (issue 17): the README says so instead of
    "pass GPU arrays and the network trains on the GPU", and its example runs (on torch's CPU
    here, the device swapped for cuda:0)."""
    import pytest

    readme = (ROOT / "README.md").read_text()
    flat = " ".join(readme.split())
    assert "pass GPU arrays and the network trains on the GPU" not in flat
    assert "a network lives where it was built (`xp=`, `device=`; NumPy by default)" in flat
    rest = readme[readme.index("A network never moves by itself"):]
    start = rest.index("```python\n") + len("```python\n")
    code = rest[start:rest.index("```", start)]
    torch = pytest.importorskip("torch", reason="the README's example moves a network to torch")
    import numpy as np

    import xpnet

    rng = np.random.default_rng(0)
    scope = {"TwoLayerNet": xpnet.TwoLayerNet, "Adam": xpnet.Adam,
             "x_gpu": torch.asarray(rng.random((4, 784)), dtype=torch.float32),
             "t_gpu": torch.asarray([1, 2, 3, 4])}
    exec(code.replace('"cuda:0"', '"cpu"'), scope)
    assert scope["net"].params["W1"].dtype == torch.float32
