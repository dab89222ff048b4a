"""metrics.niqe against BasicSR 1.4.2's own ``calculate_niqe``, both with BasicSR's real pristine parameters.

Both come from the basicsr 1.4.2 source distribution on the package registry, which `make env` downloads
into ``.venv/references/`` (the test itself uses no network). BasicSR's package ``__init__`` imports its
whole training stack (including ``torchvision.transforms.functional_tensor``, gone from current
torchvision), so the test unpacks only the files ``calculate_niqe`` runs (``metrics/niqe.py``,
``metrics/metric_util.py``, ``utils/color_util.py``, ``utils/matlab_functions.py``, ``utils/registry.py``)
as a package ``basicsr`` whose ``__init__`` files are empty, except ``utils/__init__``, which re-exports
``bgr2ycbcr`` as BasicSR's does.
"""

from __future__ import annotations

import importlib
import shutil
import sys

import numpy as np
import pytest

from talking_head.metrics.niqe import NIQE, WEIGHTS_NAME
from talking_head.toolkit import weights as w
from talking_head.toolkit.media import read_video

import weights_factory as factory

RUNS = ("metrics/niqe.py", "metrics/metric_util.py", "metrics/niqe_pris_params.npz", "utils/color_util.py",
        "utils/matlab_functions.py", "utils/registry.py")


@pytest.fixture(scope="module")
def basicsr(tmp_path_factory):
    """(BasicSR's niqe module, the path of its niqe_pris_params.npz), from the source distribution."""
    root = tmp_path_factory.mktemp("basicsr")
    factory.basicsr_files(RUNS, root)
    for package in ("", "metrics/"):
        (root / "basicsr" / f"{package}__init__.py").write_text("")
    (root / "basicsr" / "utils" / "__init__.py").write_text("from .color_util import bgr2ycbcr\n")
    sys.path.insert(0, str(root))
    try:
        module = importlib.import_module("basicsr.metrics.niqe")
    finally:
        sys.path.remove(str(root))
    yield module, root / "basicsr" / "metrics" / "niqe_pris_params.npz"
    for name in [m for m in sys.modules if m == "basicsr" or m.startswith("basicsr.")]:
        del sys.modules[name]


@pytest.fixture
def real_parameters(basicsr, isolated_caches):
    """BasicSR's parameter file where the registry looks for it; its digest is the registry's pin."""
    target = w.destination(WEIGHTS_NAME)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(basicsr[1], target)
    assert w.verify(WEIGHTS_NAME).status == "ok"
    return target


@pytest.mark.filterwarnings("ignore:Please import `convolve`:DeprecationWarning")  # BasicSR's scipy import
@pytest.mark.parametrize("crop_border, convert_to", [(0, "y"), (4, "gray")])
def test_equals_basicsr_calculate_niqe_with_the_real_parameters(basicsr, real_parameters, shared_sample,
                                                                crop_border, convert_to):
    module, _ = basicsr
    clip = shared_sample(speakers=1, clips=1, seconds=1.0, seed=0)[0]  # tests/conftest.py
    frames = read_video(clip.video, 25.0)[[0, 12]]  # (2, 512, 512, 3) uint8 RGB
    ours = NIQE(crop_border=crop_border, convert_to=convert_to).scores(frames)
    theirs = [module.calculate_niqe(frame[..., ::-1], crop_border, input_order="HWC", convert_to=convert_to)
              for frame in frames]  # BasicSR reads BGR
    np.testing.assert_allclose(ours, np.asarray(theirs, np.float64), rtol=1e-6, atol=0)
    assert np.all(np.isfinite(ours)) and np.all(ours > 0)
