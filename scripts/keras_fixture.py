"""Write tests/fixtures/keras_vae/: the keras.io VAE example, trained briefly and converted with tf2onnx.

Run under a TensorFlow venv, not the project's (the project does not install TensorFlow)::

    python3 -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install tensorflow-cpu==2.21.0 tf2onnx==1.17.0
    /tmp/tfvenv/bin/python scripts/keras_fixture.py [--raw data/MNIST/raw] [--out tests/fixtures/keras_vae]

What it does is what the README tells a Keras user to do: the model of https://keras.io/examples/generative/vae/
as published (encoder Conv2D 32 / 64 stride 2 -> Dense 16 -> ``z_mean``, ``z_log_var`` and a ``Sampling``
layer's ``z``; decoder Dense 7*7*64 -> Conv2DTranspose 64 / 32 -> a sigmoid Conv2DTranspose), trained for
a short while on a seeded MNIST subset, each half saved with ``model.export(...)`` and converted with
``python -m tf2onnx.convert --saved-model ... --output ... --opset 17``. It writes ``encoder.onnx``,
``decoder.onnx`` and ``keras_outputs.npz`` (Keras' own ``z_mean``, ``z_log_var`` on the first test images,
the decoder on a few codes, and the versions used), which tests/test_onnx_keras.py checks an import against.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

SEED = 1337  # the keras.io example's own seed
TRAIN_IMAGES = 20000  # a subset: the fixture needs a model whose outputs mean something, not a good one
EPOCHS = 2
BATCH = 128
LATENT = 2
CHECKED_IMAGES = 16  # test images whose z_mean and z_log_var are saved
CHECKED_CODES = 16  # codes whose decoding is saved


def read_idx_images(path: Path) -> np.ndarray:
    """An MNIST idx3 file -> uint8 [N, 28, 28], read with numpy (no TensorFlow datasets, no download)."""
    data = path.read_bytes()
    magic, count, rows, cols = np.frombuffer(data[:16], dtype=">u4")
    if magic != 2051 or (rows, cols) != (28, 28) or len(data) != 16 + count * 784:
        raise ValueError(f"{path} is not an idx3 file of 28 x 28 images")
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(count, 28, 28)


def build(keras, tf):
    """The keras.io example's encoder, its inference encoder, decoder and VAE (its code, kept as published)."""
    from keras import layers, ops

    class Sampling(layers.Layer):
        """Uses (z_mean, z_log_var) to sample z, the vector encoding a digit."""

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.seed_generator = keras.random.SeedGenerator(SEED)

        def call(self, inputs):
            z_mean, z_log_var = inputs
            batch = ops.shape(z_mean)[0]
            dim = ops.shape(z_mean)[1]
            epsilon = keras.random.normal(shape=(batch, dim), seed=self.seed_generator)
            return z_mean + ops.exp(0.5 * z_log_var) * epsilon

    encoder_inputs = keras.Input(shape=(28, 28, 1))
    x = layers.Conv2D(32, 3, activation="relu", strides=2, padding="same")(encoder_inputs)
    x = layers.Conv2D(64, 3, activation="relu", strides=2, padding="same")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(16, activation="relu")(x)
    z_mean = layers.Dense(LATENT, name="z_mean")(x)
    z_log_var = layers.Dense(LATENT, name="z_log_var")(x)
    z = Sampling()([z_mean, z_log_var])
    encoder = keras.Model(encoder_inputs, [z_mean, z_log_var, z], name="encoder")
    # The README's way round a converter that fails on the Sampling layer: the same layers, no random draw.
    inference_encoder = keras.Model(encoder.input, [z_mean, z_log_var], name="inference_encoder")

    latent_inputs = keras.Input(shape=(LATENT,))
    x = layers.Dense(7 * 7 * 64, activation="relu")(latent_inputs)
    x = layers.Reshape((7, 7, 64))(x)
    x = layers.Conv2DTranspose(64, 3, activation="relu", strides=2, padding="same")(x)
    x = layers.Conv2DTranspose(32, 3, activation="relu", strides=2, padding="same")(x)
    decoder_outputs = layers.Conv2DTranspose(1, 3, activation="sigmoid", padding="same")(x)
    decoder = keras.Model(latent_inputs, decoder_outputs, name="decoder")

    class VAE(keras.Model):
        def __init__(self, encoder, decoder, **kwargs):
            super().__init__(**kwargs)
            self.encoder = encoder
            self.decoder = decoder
            self.total_loss_tracker = keras.metrics.Mean(name="total_loss")

        @property
        def metrics(self):
            return [self.total_loss_tracker]

        def train_step(self, data):
            with tf.GradientTape() as tape:
                z_mean, z_log_var, z = self.encoder(data)
                reconstruction = self.decoder(z)
                reconstruction_loss = ops.mean(
                    ops.sum(keras.losses.binary_crossentropy(data, reconstruction), axis=(1, 2))
                )
                kl_loss = -0.5 * (1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))
                kl_loss = ops.mean(ops.sum(kl_loss, axis=1))
                total_loss = reconstruction_loss + kl_loss
            grads = tape.gradient(total_loss, self.trainable_weights)
            self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
            self.total_loss_tracker.update_state(total_loss)
            return {"loss": self.total_loss_tracker.result()}

    return encoder, inference_encoder, decoder, VAE(encoder, decoder)


def convert(saved_model: Path, output: Path) -> str:
    """The README's command, as a user types it -> its log (tf2onnx reports unsupported ops there and exits 0)."""
    command = [sys.executable, "-m", "tf2onnx.convert", "--saved-model", str(saved_model), "--output", str(output)]
    result = subprocess.run([*command, "--opset", "17"], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"tf2onnx failed on {saved_model}:\n{result.stderr[-3000:]}")
    return result.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", default="data/MNIST/raw", help="the folder of MNIST's idx files")
    parser.add_argument("--out", default="tests/fixtures/keras_vae", help="where the fixture is written")
    parser.add_argument(
        "--inference-encoder",
        action="store_true",
        help="convert keras.Model(encoder.input, [z_mean, z_log_var]) as encoder.onnx (the README's alternative; "
        "the committed fixture is the example's own encoder)",
    )
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import onnx
    import tensorflow as tf
    import tf2onnx

    keras.utils.set_random_seed(SEED)
    raw, out = Path(args.raw), Path(args.out)
    train = read_idx_images(raw / "train-images-idx3-ubyte")
    test = read_idx_images(raw / "t10k-images-idx3-ubyte")
    order = np.random.default_rng(SEED).permutation(len(train))[:TRAIN_IMAGES]
    train_x = np.expand_dims(train[order], -1).astype("float32") / 255  # [N, 28, 28, 1], as the example feeds it
    test_x = np.expand_dims(test[:CHECKED_IMAGES], -1).astype("float32") / 255

    encoder, inference_encoder, decoder, vae = build(keras, tf)
    vae.compile(optimizer=keras.optimizers.Adam())
    history = vae.fit(train_x, epochs=EPOCHS, batch_size=BATCH, verbose=2)

    z_mean, z_log_var, _ = (np.asarray(a) for a in encoder.predict(test_x, verbose=0))
    codes = np.concatenate(
        [z_mean[: CHECKED_CODES // 2], np.random.default_rng(SEED).normal(size=(CHECKED_CODES // 2, LATENT))]
    ).astype("float32")
    decoded = np.asarray(decoder.predict(codes, verbose=0))  # [M, 28, 28, 1]

    out.mkdir(parents=True, exist_ok=True)
    logs = {}
    with tempfile.TemporaryDirectory() as work:
        exported = inference_encoder if args.inference_encoder else encoder
        for name, model in (("encoder", exported), ("decoder", decoder)):
            saved = Path(work) / f"{name}_savedmodel"
            model.export(str(saved), verbose=False)
            logs[name] = convert(saved, out / f"{name}.onnx")
    unsupported = [
        line.split(" - ERROR - ")[-1].strip()
        for log in logs.values()
        for line in log.splitlines()
        if "is not supported" in line
    ]
    versions = {
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "tf2onnx": tf2onnx.__version__,
        "onnx": onnx.__version__,
        "python": sys.version.split()[0],
    }
    np.savez(
        out / "keras_outputs.npz",
        images=test_x,  # [M, 28, 28, 1] float32: the first test images, as Keras was fed them
        z_mean=z_mean,  # [M, 2]
        z_log_var=z_log_var,  # [M, 2]
        codes=codes,  # [K, 2]: embeddings of the first test images, then N(0, I) draws
        decoded=decoded,  # [K, 28, 28, 1]: Keras' decoder on the codes
        info=np.array(
            json.dumps(
                {
                    "versions": versions,
                    "train_images": TRAIN_IMAGES,
                    "epochs": EPOCHS,
                    "seed": SEED,
                    "encoder": "inference" if args.inference_encoder else "example",
                    "final_loss": float(history.history["loss"][-1]),
                    "tf2onnx_unsupported": unsupported,
                    # tf2onnx logs the line below and exits 0 even with an unsupported op in the graph
                    "tf2onnx_successfully_converted": {k: "Successfully converted" in v for k, v in logs.items()},
                }
            )
        ),
    )
    sizes = ", ".join(f"{p.name} {p.stat().st_size / 1e3:.0f} kB" for p in sorted(out.iterdir()))
    print(f"wrote {out}: {sizes}; {versions}; unsupported ops reported by tf2onnx: {unsupported or 'none'}")


if __name__ == "__main__":
    main()
