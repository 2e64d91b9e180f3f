"""What the benchmark's reference scripts share: PyTorch's (pytorch_reference.py,
pytorch_gpu_reference.py) and Keras's (keras_reference.py, whose venv has no PyTorch, so nothing here
imports torch). The IDX reader, and the arguments every CPU training and inference contender takes."""
import gzip

import numpy as np


def read_idx(path):
    raw = open(path, 'rb').read()
    if raw[:2] == b'\x1f\x8b':
        raw = gzip.decompress(raw)
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], 'big') for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def add_training_arguments(parser):
    """The data, step counts, batch and threads that bench/training-throughput.ts passes to each contender."""
    # Required unless the contender makes its own data (pytorch_reference.py --synthetic).
    parser.add_argument('--images')
    parser.add_argument('--labels')
    parser.add_argument('--steps', type=int, default=50)
    parser.add_argument('--warmup', type=int, default=5)
    parser.add_argument('--batch', type=int, default=128)
    parser.add_argument('--threads', type=int, default=2)


def add_inference_arguments(parser):
    """The task, test data, image count, chunk and threads that bench/inference-throughput.ts passes to each contender."""
    parser.add_argument('--task', choices=['evaluate', 'predict'], required=True)
    parser.add_argument('--images', required=True)
    parser.add_argument('--labels', required=True)
    parser.add_argument('--count', type=int, default=10000)
    parser.add_argument('--batch', type=int, default=128)
    parser.add_argument('--threads', type=int, default=2)
