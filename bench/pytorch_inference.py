"""PyTorch's own evaluation and prediction for the inference benchmark (bench/inference-throughput.ts):
the network of pytorch_reference.py in eval mode under torch.inference_mode(), over the same test
images in the same chunks and threads as convscope's evaluate() and predict(). Prints one JSON line.

usage: python3 bench/pytorch_inference.py --task evaluate|predict --images FILE --labels FILE
       --count N --batch B --threads T [--channels-last] [--precision fp32|bf16]

evaluate: summed cross-entropy, correct count and confusion matrix over the N images, read back once
at the end (what convscope's evaluate() returns); predict: softmax probabilities copied chunk by
chunk into one host array (what convscope's predict() returns). Each chunk's uint8 pixels become
float32 / 255 inside the timed loop, as in convscope. One untimed pass, then one timed pass.
"""
import argparse, json, time
import torch
import torch.nn.functional as F
from reference_common import add_inference_arguments, read_idx
from pytorch_reference import Net

CLASSES = 10


def main():
    p = argparse.ArgumentParser()
    add_inference_arguments(p)
    p.add_argument('--channels-last', action='store_true')
    p.add_argument('--precision', choices=['fp32', 'bf16'], default='fp32')
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    images = torch.from_numpy(read_idx(a.images)[:a.count].copy())
    labels = torch.from_numpy(read_idx(a.labels)[:a.count].copy()).long()
    model = Net().eval()
    if a.channels_last:
        model = model.to(memory_format=torch.channels_last)

    def logits_of(start):
        x = images[start:start + a.batch].unsqueeze(1).float().div_(255)
        if a.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device_type='cpu', dtype=torch.bfloat16, enabled=a.precision == 'bf16'):
            return model(x).float()

    def evaluate():
        loss = torch.zeros(())
        confusion = torch.zeros(CLASSES * CLASSES, dtype=torch.long)
        for start in range(0, a.count, a.batch):
            y = labels[start:start + a.batch]
            logits = logits_of(start)
            loss += F.cross_entropy(logits, y, reduction='sum')
            confusion += torch.bincount(y * CLASSES + logits.argmax(1), minlength=CLASSES * CLASSES)
        counts = confusion.tolist()
        return sum(counts[c * CLASSES + c] for c in range(CLASSES)) / a.count, float(loss) / a.count

    def predict():
        out = torch.empty(a.count, CLASSES)
        for start in range(0, a.count, a.batch):
            out[start:start + a.batch] = torch.softmax(logits_of(start), 1)
        return out.numpy()

    task = evaluate if a.task == 'evaluate' else predict
    with torch.inference_mode():
        task()
        t0 = time.perf_counter()
        task()
        seconds = time.perf_counter() - t0
    print(json.dumps({'imagesPerSecond': a.count / seconds, 'seconds': seconds, 'images': a.count,
                      'torch': torch.__version__, 'threads': torch.get_num_threads()}))


if __name__ == '__main__':
    main()
