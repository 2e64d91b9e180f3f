"""Keras's own evaluation and prediction for the inference benchmark (bench/inference-throughput.ts), a
peer of bench/pytorch_inference.py: keras_reference.py's network, model.evaluate (loss from logits
and accuracy) or model.predict (with a softmax on the logits, as convscope's predict()) over the same
test images, batch and threads. Prints one JSON line.

usage: .venv-peers/bin/python3 bench/keras_inference.py --task evaluate|predict --images FILE
       --labels FILE --count N --batch B --threads T

The uint8 images go in as they are (N x 28 x 28 x 1); the network's Rescaling layer scales them in
the step, as in training. One untimed call (Keras traces its step function there), then one timed.
"""
import argparse, json, os, time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
import numpy as np
import tensorflow as tf
import keras
from reference_common import add_inference_arguments, read_idx
from keras_reference import build_model


def main():
    p = argparse.ArgumentParser()
    add_inference_arguments(p)
    a = p.parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(a.threads)
    tf.config.threading.set_inter_op_parallelism_threads(a.threads)
    keras.utils.set_random_seed(1)
    x = read_idx(a.images)[:a.count][..., None]
    y = read_idx(a.labels)[:a.count].astype(np.int32)

    if a.task == 'evaluate':
        model = build_model()
        model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=['accuracy'])
        task = lambda: model.evaluate(x, y, batch_size=a.batch, verbose=0)
    else:
        model = keras.Sequential([build_model(), keras.layers.Softmax()])
        task = lambda: model.predict(x, batch_size=a.batch, verbose=0)
    task()
    t0 = time.perf_counter()
    task()
    seconds = time.perf_counter() - t0
    print(json.dumps({'imagesPerSecond': a.count / seconds, 'seconds': seconds, 'images': a.count,
                      'tensorflow': tf.__version__, 'keras': keras.__version__}))


if __name__ == '__main__':
    main()
