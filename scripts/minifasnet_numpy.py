"""MiniFASNet (Silent-Face-Anti-Spoofing) read and run with numpy alone: the reference computation.

Two uses: scripts/convert_liveness_model.py reads the weights with ``read_pth`` and builds its
TensorFlow graph from them; tests/test_liveness_model.py checks the shipped TFLite files against
``forward`` (this file's own float64 forward pass, batch norm applied as such, not folded).

The .pth files use PyTorch's legacy serialization (not a zip): pickles for the magic number, the
protocol version and the system info, then the state dict (tensors refer to storages through
persistent ids), then the list of storage keys, then each storage as an int64 element count followed
by its raw little-endian data. A restricted Unpickler rebuilds it without torch.
"""

from __future__ import annotations

import collections
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAGIC = 0x1950A86A20F9469CFC6C
PROTOCOL = 1001
INPUT_SIZE = 80
BN_EPS = 1e-5
LIVE_CLASS = 1
_STORAGE_DTYPES = {
    "FloatStorage": "<f4",
    "DoubleStorage": "<f8",
    "HalfStorage": "<f2",
    "LongStorage": "<i8",
    "IntStorage": "<i4",
}
# The network, top-level modules in order: a MobileFaceNet-style stem, bottleneck stages (the *_23/_34/_45
# ones downsample), a 1×1 then 5×5 depthwise head (see forward() below and models/MODELS.md).
STAGES = ["conv1", "conv2_dw", "conv_23", "conv_3", "conv_34", "conv_4", "conv_45", "conv_5", "conv_6_sep"]


@dataclass(frozen=True)
class _Storage:
    dtype: str


@dataclass(frozen=True)
class _TensorRef:
    key: str
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor(storage, offset, size, stride, *_ignored) -> _TensorRef:
    return _TensorRef(storage, int(offset), tuple(size), tuple(stride))


class _Unpickler(pickle.Unpickler):
    """Only the classes a state dict needs; anything else in the file is refused."""

    def __init__(self, file, storages: dict[str, tuple[str, int]]) -> None:
        super().__init__(file)
        self.storages = storages

    def find_class(self, module: str, name: str):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _Storage(_STORAGE_DTYPES[name])
        raise pickle.UnpicklingError(f"unexpected class {module}.{name} in a state dict")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        storage_type, key, numel = pid[1], str(pid[2]), int(pid[4])
        self.storages[key] = (storage_type.dtype, numel)
        return key


def read_pth(path: Path) -> dict[str, np.ndarray]:
    """The state dict of a legacy-format .pth file as numpy arrays, without the ``module.`` prefix."""
    storages: dict[str, tuple[str, int]] = {}
    with open(path, "rb") as f:
        if pickle.load(f) != MAGIC:
            raise ValueError(f"{path}: not a legacy PyTorch file (bad magic number)")
        if pickle.load(f) != PROTOCOL:
            raise ValueError(f"{path}: unknown protocol version")
        info = pickle.load(f)
        if not info.get("little_endian", False):
            raise ValueError(f"{path}: big-endian files are not supported")
        state = _Unpickler(f, storages).load()
        keys = pickle.load(f)
        data: dict[str, np.ndarray] = {}
        for key in keys:
            dtype, numel = storages[key]
            count = int.from_bytes(f.read(8), "little")
            if count != numel:
                raise ValueError(f"{path}: storage {key} holds {count} elements, expected {numel}")
            raw = f.read(count * np.dtype(dtype).itemsize)
            data[key] = np.frombuffer(raw, dtype=dtype, count=count)
        if f.read(1):
            raise ValueError(f"{path}: bytes left after the last storage")
    weights: dict[str, np.ndarray] = {}
    for name, ref in state.items():
        flat = data[ref.key]
        itemsize = flat.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[ref.offset :], ref.size, [s * itemsize for s in ref.stride], writeable=False
        )
        weights[name.removeprefix("module.")] = np.array(view)
    return weights


def residual_blocks(weights: dict[str, np.ndarray], stage: str) -> list[str]:
    """The block prefixes of a residual stage (``conv_3.model.0`` …) in order."""
    indices = {int(k.split(".")[2]) for k in weights if k.startswith(f"{stage}.model.")}
    return [f"{stage}.model.{i}" for i in sorted(indices)]


def is_residual(weights: dict[str, np.ndarray], stage: str) -> bool:
    return any(k.startswith(f"{stage}.model.") for k in weights)


def bn_affine(weights: dict[str, np.ndarray], prefix: str) -> tuple[np.ndarray, np.ndarray]:
    """Scale and shift of an inference-mode batch norm: y = x * scale + shift (float64)."""
    w = {
        n: weights[f"{prefix}.{n}"].astype(np.float64)
        for n in ("weight", "bias", "running_mean", "running_var")
    }
    scale = w["weight"] / np.sqrt(w["running_var"] + BN_EPS)
    return scale, w["bias"] - w["running_mean"] * scale


# ------------------------------------------------------------------- forward pass (float64, NCHW)


def _conv(x: np.ndarray, weight: np.ndarray, stride: int, pad: int) -> np.ndarray:
    """Convolution of one CHW image as in PyTorch (cross-correlation, zero padding, groups = 1 or C)."""
    out_c, in_per_group, kh, kw = weight.shape
    channels = x.shape[0]
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    out_h = (x.shape[1] - kh) // stride + 1
    out_w = (x.shape[2] - kw) // stride + 1
    weight = weight.astype(np.float64)
    depthwise = in_per_group == 1 and out_c == channels and channels > 1
    result = np.zeros((out_c, out_h, out_w))
    for i in range(kh):
        for j in range(kw):
            patch = x[:, i : i + stride * (out_h - 1) + 1 : stride, j : j + stride * (out_w - 1) + 1 : stride]
            if depthwise:
                result += weight[:, 0, i, j][:, None, None] * patch
            else:
                result += np.einsum("oc,chw->ohw", weight[:, :, i, j], patch)
    return result


def _bn(x: np.ndarray, weights: dict[str, np.ndarray], prefix: str) -> np.ndarray:
    scale, shift = bn_affine(weights, prefix)
    shape = (-1,) + (1,) * (x.ndim - 1)
    return x * scale.reshape(shape) + shift.reshape(shape)


def _prelu(x: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    return np.where(x > 0, x, x * alpha.astype(np.float64)[:, None, None])


def _block(x, weights, prefix: str, stride: int, pad: int, activation: bool) -> np.ndarray:
    x = _bn(_conv(x, weights[f"{prefix}.conv.weight"], stride, pad), weights, f"{prefix}.bn")
    return _prelu(x, weights[f"{prefix}.prelu.weight"]) if activation else x


def _bottleneck(x, weights, prefix: str, stride: int, shortcut: bool) -> np.ndarray:
    y = _block(x, weights, f"{prefix}.conv", 1, 0, True)
    y = _block(y, weights, f"{prefix}.conv_dw", stride, 1, True)
    y = _block(y, weights, f"{prefix}.project", 1, 0, False)
    if f"{prefix}.se_module.fc1.weight" in weights:
        se = f"{prefix}.se_module"
        s = y.mean(axis=(1, 2), keepdims=True)
        s = np.maximum(_bn(_conv(s, weights[f"{se}.fc1.weight"], 1, 0), weights, f"{se}.bn1"), 0)
        s = _bn(_conv(s, weights[f"{se}.fc2.weight"], 1, 0), weights, f"{se}.bn2")
        y = y * (1 / (1 + np.exp(-s)))
    return x + y if shortcut else y


def forward(weights: dict[str, np.ndarray], image_bgr: np.ndarray) -> np.ndarray:
    """Softmax over the 3 classes for one 80×80×3 BGR crop (values 0–255); class 1 is live."""
    if image_bgr.shape != (INPUT_SIZE, INPUT_SIZE, 3):
        raise ValueError(f"expected an {INPUT_SIZE}×{INPUT_SIZE}×3 crop, got {image_bgr.shape}")
    x = image_bgr.astype(np.float64).transpose(2, 0, 1)
    for stage in STAGES:
        if stage == "conv1":
            x = _block(x, weights, stage, 2, 1, True)
        elif stage == "conv2_dw":
            x = _block(x, weights, stage, 1, 1, True)
        elif stage == "conv_6_sep":
            x = _block(x, weights, stage, 1, 0, True)
        elif is_residual(weights, stage):
            for prefix in residual_blocks(weights, stage):
                x = _bottleneck(x, weights, prefix, 1, shortcut=True)
        else:
            x = _bottleneck(x, weights, stage, 2, shortcut=False)
    x = _block(x, weights, "conv_6_dw", 1, 0, False)  # 5×5 valid: 512×1×1
    x = x.reshape(-1) @ weights["linear.weight"].astype(np.float64).T
    x = _bn(x, weights, "bn")
    logits = x @ weights["prob.weight"].astype(np.float64).T
    e = np.exp(logits - logits.max())
    return e / e.sum()
