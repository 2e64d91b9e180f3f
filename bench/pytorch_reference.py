"""PyTorch's own training loop for the benchmark: the same network, batch, optimizer and threads as
convscope, on the same data (read from the IDX files convscope reads). Prints one JSON line.

usage: python3 bench/pytorch_reference.py --images FILE --labels FILE --steps N --batch B --threads T
       [--precision fp32|bf16] [--channels-last] [--device cpu|cuda] [--graph-rewrite] [--compile]

--graph-rewrite runs the same function the way convscope's scripted graph does
(src/nn/script-source.ts): max pooling on channels-last tensors and ReLU after the pooling. It shows
how much of the scripted path's lead over the textbook module below comes from that rewrite.
--compile trains the module through torch.compile (inductor; its compilation happens in the warm-up).
--plan FILE trains another convscope network instead, given as its plan's JSON (bench/plan_net.py);
with --channels-last its batch-norm convolutions compute channels-last, as convscope's do.
--synthetic CxHxW trains on seeded random uint8 images N x C x H x W (N: enough for the steps) with
random labels below the plan's classes instead of --images/--labels: the colour rows (32x32x3, CIFAR's
shape; CIFAR itself is not available offline), whose speed does not depend on the pictures' content.
"""
import argparse, json, time
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from reference_common import add_training_arguments, read_idx
from plan_net import PlanNet


class Net(nn.Module):
    # The TensorFlow layers-tutorial network, as convscope's defaultSpec().
    def __init__(self, graph_rewrite: bool = False):
        super().__init__()
        self.graph_rewrite = graph_rewrite
        self.conv1 = nn.Conv2d(1, 32, 5, padding=2)
        self.conv2 = nn.Conv2d(32, 64, 5, padding=2)
        self.fc1 = nn.Linear(7 * 7 * 64, 1024)
        self.fc2 = nn.Linear(1024, 10)

    def forward(self, x):
        # Spelled out twice: TorchScript (test/script.test.ts scripts this class) cannot take a
        # submodule as a function argument.
        if self.graph_rewrite:
            x = F.relu(F.max_pool2d(self.conv1(x).contiguous(memory_format=torch.channels_last), 2))
            x = F.relu(F.max_pool2d(self.conv2(x).contiguous(memory_format=torch.channels_last), 2))
        else:
            x = F.max_pool2d(F.relu(self.conv1(x)), 2)
            x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = F.dropout(F.relu(self.fc1(x)), 0.4, self.training)
        return self.fc2(x)


def main():
    p = argparse.ArgumentParser()
    add_training_arguments(p)
    p.add_argument('--precision', default='fp32')
    p.add_argument('--channels-last', action='store_true')
    p.add_argument('--device', default='cpu')
    p.add_argument('--graph-rewrite', action='store_true')
    p.add_argument('--compile', action='store_true')
    p.add_argument('--seed', type=int, default=42)
    p.add_argument('--plan')
    p.add_argument('--synthetic')
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    device = torch.device(a.device)
    if a.synthetic:
        c, h, w = (int(v) for v in a.synthetic.split('x'))
        classes = json.load(open(a.plan))['spec']['classes'] if a.plan else 10
        count = (a.warmup + a.steps + 1) * a.batch
        generator = torch.Generator().manual_seed(a.seed)
        images = torch.randint(0, 256, (count, c, h, w), dtype=torch.uint8, generator=generator).to(device)
        labels = torch.randint(0, classes, (count,), dtype=torch.uint8, generator=generator).to(device)
    else:
        if not a.images or not a.labels:
            p.error('--images and --labels are required without --synthetic')
        images = torch.from_numpy(read_idx(a.images).copy()).to(device)
        labels = torch.from_numpy(read_idx(a.labels).copy()).to(device)
    if a.plan:
        model = PlanNet(json.load(open(a.plan)), channels_last=a.channels_last).to(device)
    else:
        model = Net(a.graph_rewrite).to(device)
    if a.channels_last and not a.plan:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    forward = torch.compile(model) if a.compile else model
    perm = torch.randperm(images.shape[0], device=device)
    model.train()

    def step(i):
        rows = perm[(i * a.batch) % (images.shape[0] - a.batch):][:a.batch]
        x = images.index_select(0, rows)
        # IDX images are [N, H, W] (one channel); synthetic ones already [N, C, H, W].
        x = (x.unsqueeze(1) if x.dim() == 3 else x).float().div_(255)
        if a.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        y = labels.index_select(0, rows).long()
        opt.zero_grad()
        with torch.autocast(device_type=a.device, dtype=torch.bfloat16, enabled=a.precision == 'bf16'):
            loss = F.cross_entropy(forward(x), y)
        loss.backward()
        opt.step()
        return loss

    for i in range(a.warmup):
        step(i)
    if a.device == 'cuda':
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for i in range(a.steps):
        loss = step(a.warmup + i)
    float(loss)
    if a.device == 'cuda':
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    print(json.dumps({'imagesPerSecond': a.steps * a.batch / seconds, 'seconds': seconds, 'steps': a.steps,
                      'torch': torch.__version__, 'threads': torch.get_num_threads()}))


if __name__ == '__main__':
    main()
