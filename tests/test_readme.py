"""The Python examples in README.md run as written, in order."""

import re
import warnings
from pathlib import Path

README = Path(__file__).parent.parent / "README.md"


def test_readme_examples_run(tmp_path, monkeypatch):
    """Every ```python block of the README executes in one shared namespace.

    It runs in a temporary folder, since the examples write a checkpoint.
    """
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert blocks
    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for block in blocks:
            # The README is this repository's own file, so running it is the point.
            exec(compile(block, str(README), "exec"), namespace)  # noqa: S102
    assert namespace["result"].loss_history[-1] <= namespace["result"].loss_history[0]
