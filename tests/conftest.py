"""Test setup: 8 virtual CPU devices (data-parallel tests), float32, the shared data directory."""

import os
from pathlib import Path

import jax

jax.config.update("jax_num_cpu_devices", 8)

import pytest  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """$SGT_DATA_DIR, else ../shared/data; tests that need real files skip when neither exists."""
    path = Path(os.environ.get("SGT_DATA_DIR") or SHARED_DATA)
    if not (path / "mnist").exists():
        pytest.skip(f"real data not found in {path} (set SGT_DATA_DIR)")
    return path
