"""Keras's own training loop (model.fit on TensorFlow) for the benchmark, a peer of
bench/pytorch_reference.py: the same network (the TensorFlow layers-tutorial CNN, channels-last as
Keras has it), batch, optimizer (Adam 1e-3), loss (sparse categorical cross-entropy from logits) and
threads, on the same data (the IDX files convscope reads, scaled by 1/255 inside the step as the
others do). Prints one JSON line like pytorch_reference.py's.

usage: .venv-peers/bin/python3 bench/keras_reference.py --images FILE --labels FILE --steps N --batch B
       --threads T [--warmup W] [--jit-compile]

Runs in .venv-peers (scripts/setup-peers.sh), which has no PyTorch: the IDX reader is
bench/reference_common.py's, shared with the PyTorch scripts without importing torch. The steps are one model.fit call over
(warmup + steps) batches; a callback stamps the end of every batch and the figure is timed from the
end of the last warm-up batch to the end of the last batch. Threads: TensorFlow's intra-op and
inter-op pools both get --threads. XLA (--jit-compile) is off by default, as Keras itself leaves it
on a machine with only CPUs.
"""
import argparse, json, os, time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # oneDNN's and CPU-feature notices on stderr
import numpy as np
import tensorflow as tf
import keras
from reference_common import add_training_arguments, read_idx


def build_model():
    # convscope's defaultSpec() / pytorch_reference.py's Net, the way the TensorFlow tutorial writes it
    # (bias and ReLU inside each layer, which TensorFlow fuses into the oneDNN primitive).
    return keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        keras.layers.Rescaling(1 / 255),
        keras.layers.Conv2D(32, 5, padding='same', activation='relu'),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(64, 5, padding='same', activation='relu'),
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dense(1024, activation='relu'),
        keras.layers.Dropout(0.4),
        keras.layers.Dense(10),
    ])


class BatchClock(keras.callbacks.Callback):
    """perf_counter() at the start of training and at the end of every batch."""

    def __init__(self):
        super().__init__()
        self.stamps = []

    def on_train_begin(self, logs=None):
        self.stamps = [time.perf_counter()]

    def on_train_batch_end(self, batch, logs=None):
        if logs and 'loss' in logs:
            float(logs['loss'])  # the step's result exists before the stamp
        self.stamps.append(time.perf_counter())


def main():
    p = argparse.ArgumentParser()
    add_training_arguments(p)
    p.add_argument('--jit-compile', action='store_true')
    p.add_argument('--seed', type=int, default=42)
    a = p.parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(a.threads)
    tf.config.threading.set_inter_op_parallelism_threads(a.threads)
    keras.utils.set_random_seed(a.seed)

    images = read_idx(a.images)
    labels = read_idx(a.labels)
    # The batches pytorch_reference.py's step(i) takes: a permutation read from (i * batch) % (n - batch).
    perm = np.random.default_rng(a.seed).permutation(images.shape[0])
    total = a.warmup + a.steps
    rows = np.concatenate([perm[(i * a.batch) % (images.shape[0] - a.batch):][:a.batch] for i in range(total)])
    x = images[rows][..., None]  # uint8, N x 28 x 28 x 1; Rescaling makes it float32 / 255 in the step
    y = labels[rows].astype(np.int32)

    model = build_model()
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=a.jit_compile)
    clock = BatchClock()
    model.fit(x, y, batch_size=a.batch, epochs=1, shuffle=False, verbose=0, callbacks=[clock])
    assert len(clock.stamps) == total + 1, f'{len(clock.stamps) - 1} batches ran, {total} expected'
    seconds = clock.stamps[-1] - clock.stamps[a.warmup]
    print(json.dumps({'imagesPerSecond': a.steps * a.batch / seconds, 'seconds': seconds, 'steps': a.steps,
                      'tensorflow': tf.__version__, 'keras': keras.__version__,
                      'threads': tf.config.threading.get_intra_op_parallelism_threads(),
                      'interOpThreads': tf.config.threading.get_inter_op_parallelism_threads()}))


if __name__ == '__main__':
    main()
