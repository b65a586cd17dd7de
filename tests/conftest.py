"""The tests' fixtures; what the tests share besides fixtures is in helpers/."""

import os
import shutil

import pytest
from helpers.devtools import Browser, find_chromium, install_chromium

from fireflan.worlds.wiki import WorldConfig, write_world


@pytest.fixture(scope="session")
def small_world(tmp_path_factory):
    """A small generated world on disk (seed 7): 200 train, 60 dev, 60 test questions."""
    out = tmp_path_factory.mktemp("world")
    write_world(WorldConfig(seed=7, train=200, dev=60, test=60), out)
    return out


@pytest.fixture(scope="session")
def chromium():
    """A Chromium binary: on the PATH, or Debian's `chromium` installed with apt-get (as root, time-boxed)."""
    path, why = find_chromium(), ""
    if path is None:
        if not (hasattr(os, "geteuid") and os.geteuid() == 0) or not shutil.which("apt-get"):
            why = "not root with apt-get, so it cannot be installed here"
        else:
            why = install_chromium()
            path = find_chromium()
    if path is None:
        pytest.skip(f"no Chromium to test the page in ({why}): install Debian's `chromium` package, or set "
                    "FIREFLAN_CHROMIUM to a Chromium or Chrome binary")
    return path


@pytest.fixture
def browser(chromium, tmp_path):
    b = Browser(chromium, tmp_path / "profile")
    yield b
    b.close()
