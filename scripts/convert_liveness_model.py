#!/usr/bin/env python3
"""Convert the two MiniFASNet anti-spoofing models (Silent-Face-Anti-Spoofing, Apache-2.0) to TFLite.

The .pth files are read with numpy alone (scripts/minifasnet_numpy.py: PyTorch's legacy format, no
torch), every inference batch norm is folded into the convolution or matrix before it, and the network
is rebuilt with TensorFlow ops and converted with tf.lite.TFLiteConverter (fp32; the models are
~1.7 MB each, small enough not to quantise). Two files are written:

    models/liveness_minifasnet_v2.tflite     from 2.7_80x80_MiniFASNetV2.pth     (crop 2.7× the face box)
    models/liveness_minifasnet_v1se.tflite   from 4_0_0_80x80_MiniFASNetV1SE.pth (crop 4× the face box)

Both take 1×80×80×3 float32 BGR pixel values 0..255 (NHWC; no normalisation, as the original) and
return the 1×3 softmax (class 1 = live). After converting, the script checks both files against the
numpy forward pass on the crops of the sample images and prints the largest difference.

Usage (from the repository root, in a virtualenv with the `convert` extra of setup.cfg):
    python scripts/convert_liveness_model.py SOURCE_DIR [--models-dir models]
SOURCE_DIR holds the two .pth files (e.g. a checkout's resources/anti_spoof_models/).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import minifasnet_numpy as ref

REPO = Path(__file__).resolve().parent.parent
# (source file, output file) in the order the daemon uses them (daemon/vision/liveness.py CROP_SCALES).
MODELS = [
    ("2.7_80x80_MiniFASNetV2.pth", "liveness_minifasnet_v2.tflite"),
    ("4_0_0_80x80_MiniFASNetV1SE.pth", "liveness_minifasnet_v1se.tflite"),
]
TOLERANCE = 1e-4  # largest |tflite − numpy| per softmax value accepted


def _folded(weights: dict[str, np.ndarray], prefix: str, depthwise: bool) -> tuple[np.ndarray, np.ndarray]:
    """Kernel (HWIO, or HWC1 for depthwise) and bias of conv followed by its batch norm."""
    scale, shift = ref.bn_affine(weights, f"{prefix}.bn")
    kernel = weights[f"{prefix}.conv.weight"].astype(np.float64) * scale[:, None, None, None]
    # depthwise (C, 1, kh, kw) -> (kh, kw, C, 1); otherwise (O, I, kh, kw) -> (kh, kw, I, O)
    kernel = kernel.transpose(2, 3, 0, 1) if depthwise else kernel.transpose(2, 3, 1, 0)
    return kernel.astype(np.float32), shift.astype(np.float32)


def build_function(weights: dict[str, np.ndarray]):
    """A tf.function: 1×80×80×3 float32 BGR → 1×3 softmax."""
    import tensorflow as tf

    def prelu(x, prefix):
        alpha = weights[f"{prefix}.prelu.weight"].astype(np.float32)
        return tf.maximum(x, 0.0) + alpha * tf.minimum(x, 0.0)

    def block(x, prefix, stride, pad, activation=True):
        depthwise = weights[f"{prefix}.conv.weight"].shape[1] == 1 and x.shape[-1] > 1
        kernel, bias = _folded(weights, prefix, depthwise)
        if pad:  # PyTorch pads symmetrically; TF's SAME would not for stride 2
            x = tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
        strides = [1, stride, stride, 1]
        if depthwise:
            x = tf.nn.depthwise_conv2d(x, kernel, strides, "VALID")
        else:
            x = tf.nn.conv2d(x, kernel, strides, "VALID")
        x = x + bias
        return prelu(x, prefix) if activation else x

    def dense(x, name, bn=None):
        w = weights[f"{name}.weight"].astype(np.float64).reshape(weights[f"{name}.weight"].shape[0], -1).T
        bias = np.zeros(w.shape[1])
        if bn is not None:
            scale, shift = ref.bn_affine(weights, bn)
            w, bias = w * scale, shift
        return tf.matmul(x, w.astype(np.float32)) + bias.astype(np.float32)

    def bottleneck(x, prefix, stride, shortcut):
        y = block(x, f"{prefix}.conv", 1, 0)
        y = block(y, f"{prefix}.conv_dw", stride, 1)
        y = block(y, f"{prefix}.project", 1, 0, activation=False)
        se = f"{prefix}.se_module"
        if f"{se}.fc1.weight" in weights:
            s = tf.reduce_mean(y, axis=[1, 2])
            s = tf.nn.relu(dense(s, f"{se}.fc1", f"{se}.bn1"))
            s = tf.sigmoid(dense(s, f"{se}.fc2", f"{se}.bn2"))
            y = y * s[:, None, None, :]
        return x + y if shortcut else y

    size = ref.INPUT_SIZE

    @tf.function(input_signature=[tf.TensorSpec([1, size, size, 3], tf.float32, name="crop_bgr")])
    def classify(x):
        for stage in ref.STAGES:
            if stage == "conv1":
                x = block(x, stage, 2, 1)
            elif stage == "conv2_dw":
                x = block(x, stage, 1, 1)
            elif stage == "conv_6_sep":
                x = block(x, stage, 1, 0)
            elif ref.is_residual(weights, stage):
                for prefix in ref.residual_blocks(weights, stage):
                    x = bottleneck(x, prefix, 1, shortcut=True)
            else:
                x = bottleneck(x, stage, 2, shortcut=False)
        x = block(x, "conv_6_dw", 1, 0, activation=False)
        x = tf.reshape(x, [1, -1])
        x = dense(x, "linear", "bn")
        x = dense(x, "prob")
        return tf.identity(tf.nn.softmax(x), name="probabilities")

    return classify


def convert(weights: dict[str, np.ndarray]) -> bytes:
    import tensorflow as tf

    func = build_function(weights)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([func.get_concrete_function()], func)
    return converter.convert()


def tflite_probabilities(model: bytes, crops: list[np.ndarray]) -> np.ndarray:
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_content=model, num_threads=1)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0]["index"], interpreter.get_output_details()[0]["index"]
    result = []
    for crop in crops:
        interpreter.set_tensor(inp, crop[None].astype(np.float32))
        interpreter.invoke()
        result.append(interpreter.get_tensor(out)[0].copy())
    return np.stack(result)


def sample_crops(samples: Path, scale: float) -> list[np.ndarray]:
    """Crops of the samples around a fixed central box: only to compare the two computations."""
    import cv2

    crops = []
    for path in sorted(samples.glob("*.jpg")):
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        h, w = image.shape[:2]
        box = (w * 0.35, h * 0.3, w * 0.3, h * 0.3)
        x, y, bw, bh = box
        s = min((h - 1) / bh, (w - 1) / bw, scale)
        cx, cy = x + bw / 2, y + bh / 2
        x1, y1 = max(0, int(cx - bw * s / 2)), max(0, int(cy - bh * s / 2))
        x2, y2 = min(w - 1, int(cx + bw * s / 2)), min(h - 1, int(cy + bh * s / 2))
        crops.append(cv2.resize(image[y1 : y2 + 1, x1 : x2 + 1], (80, 80)))
    return crops


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="folder with the two MiniFASNet .pth files")
    parser.add_argument("--models-dir", type=Path, default=REPO / "models")
    parser.add_argument("--samples", type=Path, help="folder of .jpg images to check the models on")
    args = parser.parse_args(argv)

    ok = True
    for (source, target), scale in zip(MODELS, (2.7, 4.0), strict=True):
        weights = ref.read_pth(args.source / source)
        model = convert(weights)
        path = args.models_dir / target
        path.write_bytes(model)
        print(f"wrote {path} ({len(model)} bytes)")
        samples = args.samples or args.source / "samples"
        crops = sample_crops(samples, scale) if samples.is_dir() else []
        crops.append(np.random.default_rng(0).integers(0, 256, (80, 80, 3), dtype=np.uint8))
        ours = tflite_probabilities(model, crops)
        theirs = np.stack([ref.forward(weights, c) for c in crops])
        diff = float(np.abs(ours - theirs).max())
        print(
            f"  {len(crops)} crops: max |tflite - numpy| = {diff:.3g}; live probability {ours[:, 1].round(4)}"
        )
        ok &= diff <= TOLERANCE
    if not ok:
        print(
            f"the converted models differ from the numpy reference by more than {TOLERANCE}", file=sys.stderr
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
