"""PyTorch's own GPU reference for issue 14: the network of bench/pytorch_reference.py (Net) trained on
the full Fashion-MNIST training set with the dataset resident on the device, three ways:

  eager    the textbook loop; each batch is gathered on the device by index from a device randperm
  compile  the same loop through torch.compile(model, mode="reduce-overhead") (inductor + CUDA graphs
           for forward and backward; the optimizer step stays eager)
  graph    the whole training step (gather, forward, loss, backward, Adam) captured in one CUDA graph
           with torch.cuda.graph and replayed through a static index buffer; Adam(capturable=True)

Batch 128, Adam lr 1e-3, fp32, inputs standardised with the training set's mean and std as convscope
does (trainCnn's `standardize` default). The last partial batch of each epoch is DROPPED in every
variant (60000 // 128 = 468 steps, like convscope's `dropLast: true`), so that all variants and the
graph's static shapes agree. The training loss is summed on the device and read once per epoch.

One warm-up epoch first (compilation, graph capture), then --epochs timed epochs, each between
torch.cuda.synchronize() calls; the epoch's randperm is made before its clock starts. Then chunked
evaluation of the test set (chunks of 1000, no grad): one warm-up pass, median of 5, in ms.
Prints one JSON line:
  {variant, secondsPerEpoch: [...], median, evalMs, torch, device, ...}

usage: python3 bench/pytorch_gpu_reference.py --images F --labels F --test-images F --test-labels F
       [--variant eager|compile|graph] [--epochs 3] [--device cuda|cpu] [--limit N] [--batch 128]
--device cpu with a small --limit is a smoke test of the script itself (the graph variant needs CUDA).
"""
import argparse, json, os, statistics, sys, time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_reference import Net, read_idx  # noqa: E402  (the same network and IDX reader)

VARIANTS = ('eager', 'compile', 'graph')


def sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def load(images_path, labels_path, limit, device):
    images = torch.from_numpy(read_idx(images_path).copy())
    labels = torch.from_numpy(read_idx(labels_path).copy())
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    # Uploaded once: uint8 images (N x 28 x 28) and int64 labels stay on the device for the whole run.
    return images.to(device), labels.to(device=device, dtype=torch.long)


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--variant', choices=VARIANTS, default='eager')
    p.add_argument('--images', required=True)
    p.add_argument('--labels', required=True)
    p.add_argument('--test-images', required=True)
    p.add_argument('--test-labels', required=True)
    p.add_argument('--epochs', type=int, default=3, help='timed epochs after the warm-up epoch')
    p.add_argument('--batch', type=int, default=128)
    p.add_argument('--eval-chunk', type=int, default=1000)
    p.add_argument('--eval-runs', type=int, default=5)
    p.add_argument('--device', default='cuda')
    p.add_argument('--limit', type=int, default=None, help='first N training and test images (smoke tests)')
    p.add_argument('--seed', type=int, default=1)
    a = p.parse_args()

    device = torch.device(a.device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        sys.exit('pytorch_gpu_reference: CUDA is not available to this PyTorch')
    if a.variant == 'graph' and device.type != 'cuda':
        sys.exit('pytorch_gpu_reference: the graph variant needs --device cuda')
    torch.manual_seed(a.seed)

    images, labels = load(a.images, a.labels, a.limit, device)
    test_images, test_labels = load(a.test_images, a.test_labels, a.limit, device)
    # convscope standardises with the training set's statistics (trainCnn's default): x = (p/255 - mean) / std.
    pixels = images.float().div_(255)
    mean, std = pixels.mean().item(), pixels.std().item()
    del pixels
    shift, scale = mean * 255, 1 / (std * 255)
    count = images.shape[0]
    steps = count // a.batch  # the last partial batch is dropped
    if steps == 0:
        sys.exit(f'pytorch_gpu_reference: --limit {count} is smaller than one batch of {a.batch}')

    model = Net().to(device)
    model.train()

    def prepare(rows_images):
        return rows_images.unsqueeze(1).float().sub_(shift).mul_(scale)

    loss_sum = torch.zeros((), device=device)

    if a.variant == 'graph':
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, capturable=True)
        static_idx = torch.zeros(a.batch, dtype=torch.long, device=device)

        def step():
            x = prepare(images.index_select(0, static_idx))
            y = labels.index_select(0, static_idx)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            loss_sum.add_(loss.detach())

        # Warm-up on a side stream, then capture, as in PyTorch's CUDA graphs documentation.
        static_idx.copy_(torch.randperm(count, device=device)[:a.batch])
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                opt.zero_grad(set_to_none=True)
                step()
        torch.cuda.current_stream().wait_stream(side)
        opt.zero_grad(set_to_none=True)  # grads are allocated inside the graph's private pool
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            step()

        def run_epoch(perm):
            for i in range(steps):
                static_idx.copy_(perm[i * a.batch:(i + 1) * a.batch])
                graph.replay()
        forward = model
    else:
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        forward = torch.compile(model, mode='reduce-overhead') if a.variant == 'compile' else model

        def run_epoch(perm):
            for i in range(steps):
                rows = perm[i * a.batch:(i + 1) * a.batch]
                x = prepare(images.index_select(0, rows))
                y = labels.index_select(0, rows)
                opt.zero_grad(set_to_none=True)
                loss = F.cross_entropy(forward(x), y)
                loss.backward()
                opt.step()
                loss_sum.add_(loss.detach())

    epoch_seconds, epoch_losses = [], []
    for epoch in range(1 + a.epochs):  # epoch 0 is the warm-up
        perm = torch.randperm(count, device=device)
        loss_sum.zero_()
        sync(device)
        t0 = time.perf_counter()
        run_epoch(perm)
        sync(device)
        seconds = time.perf_counter() - t0
        epoch_losses.append(loss_sum.item() / steps)
        if epoch > 0:
            epoch_seconds.append(seconds)
        else:
            warmup_seconds = seconds

    model.eval()

    def evaluate():
        correct = torch.zeros((), dtype=torch.long, device=device)
        total_loss = torch.zeros((), device=device)
        with torch.no_grad():
            for start in range(0, test_images.shape[0], a.eval_chunk):
                x = prepare(test_images[start:start + a.eval_chunk])
                y = test_labels[start:start + a.eval_chunk]
                logits = forward(x)
                total_loss += F.cross_entropy(logits, y, reduction='sum')
                correct += (logits.argmax(1) == y).sum()
        return correct.item() / test_images.shape[0], total_loss.item() / test_images.shape[0]

    evaluate()  # warm-up (and, for compile, the eval-mode compilation)
    eval_ms = []
    for _ in range(a.eval_runs):
        sync(device)
        t0 = time.perf_counter()
        accuracy, test_loss = evaluate()  # .item() waits for the device
        sync(device)
        eval_ms.append((time.perf_counter() - t0) * 1000)

    print(json.dumps({
        'variant': a.variant,
        'secondsPerEpoch': epoch_seconds,
        'median': statistics.median(epoch_seconds),
        'warmupSeconds': warmup_seconds,
        'evalMs': statistics.median(eval_ms),
        'evalMsRuns': eval_ms,
        'torch': torch.__version__,
        'device': torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu',
        'steps': steps, 'batch': a.batch, 'images': count, 'dropLast': True,
        'trainLossPerEpoch': epoch_losses, 'testAccuracy': accuracy, 'testLoss': test_loss,
    }))


if __name__ == '__main__':
    main()
