"""The README's Python examples run as written."""

import re
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
EXAMPLES = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_the_readme_has_examples():
    assert len(EXAMPLES) >= 2


@pytest.mark.parametrize("index", range(len(EXAMPLES)))
def test_readme_example_runs(index):
    namespace: dict = {}
    exec(compile(EXAMPLES[index], f"README.md example {index + 1}", "exec"), namespace)
    if "W" in namespace:  # the matrix example: x @ W is x @ weights, to the crossbar's precision
        exact = namespace["x"] @ namespace["weights"]
        error = np.linalg.norm(namespace["z"] - exact) / np.linalg.norm(exact)
        assert namespace["z"].shape == (5, 30) and error < 0.01
