"""The README's Python example runs (with 1 epoch, in a fresh interpreter with one device)."""

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks, "README has a python example"
    code = blocks[0].replace("epochs=15", "epochs=1")
    code += "\nassert saliency.shape == ds.x_test.shape and mask.sum() == 100 * 1250\nprint('ok', float(loss))\n"
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "ok" in run.stdout


def test_readme_text_example_runs(tmp_path):
    blocks = [b for b in re.findall(r"```python\n(.*?)```", README.read_text(), re.S) if "embedding_classifier" in b]
    assert len(blocks) == 1, "README has one text example"
    code = blocks[0] + ("\nassert np.isfinite(float(step_metrics['loss'])) and scores.shape == ids.shape"
                        "\nassert len(erasure['comprehensiveness']) == 5\nprint('ok')\n")
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "ok" in run.stdout
