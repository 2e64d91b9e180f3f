"""PyTorch's side of the explanation benchmark (bench/explain-throughput.ts): saliency, integrated
gradients and Grad-CAM written by hand with autograd (Captum is not installed, and its hooks would
cost the same passes), with convscope's definitions, over the same test images, the same weights
(convscope's checkpoint, read with torch.load), the same chunks and threads. Prints one JSON line.

usage: python3 bench/pytorch_explain.py --method saliency|integrated-gradients|grad-cam
       --checkpoint FILE --images FILE --count N --chunk C --threads T [--steps 64] [--channels-last]
       [--maps-out FILE]

The same computation as convscope's explain() (src/probe/), step by step:
- each block of C images: uint8 pixels / 255 (maps are taken with respect to pixels in [0, 1]), the
  checkpoint's standardisation (x - mean) / std inside the differentiated function, one forward pass
  without gradient whose argmax is each image's target (explain()'s default, the predicted class);
- saliency: |d logit_target / d pixel|, one forward and backward pass over the block;
- integrated-gradients: black baseline, the midpoint rule (gradients at alpha = (k + 1/2) / steps,
  averaged), the path points in passes of C rows, then (x - baseline) * mean gradient, and one forward
  pass over the baselines for each image's completeness delta;
- grad-cam at the last conv layer's activation (conv2.act: after its ReLU, before its pooling): its
  maps A without gradient, then the rest of the network from a leaf copy of A, alpha_k the mean over
  positions of d logit / d A_k, ReLU(sum_k alpha_k A_k), upsampled bilinearly (align_corners=False).
Parameters take no gradient (requires_grad off), as in convscope. The maps land in one host tensor
[N, 28, 28].

--channels-last relabels the first convolution's one-channel input as channels-last (plan_net's
channels_last: strides only, no copy), as convscope does on the CPU (src/nn/spec.ts,
convolvesChannelsLast): the convolutions then take the same kernels, and the maps equal convscope's to
float rounding (1.7e-7 of the largest value on the first 64 images' IG, 2026-12-02). Without it (NCHW,
the textbook module) the rounding differs, and along IG's path some units sit close enough to a ReLU's
or a max pooling's kink to switch: IG's maps then differ by up to a few 1e-3 of the largest value.

One untimed block first (its maps written to --maps-out as raw float32, for the bench's
check that both sides compute the same thing), then one timed pass over the N images.
"""
import argparse, json, time
import torch
import torch.nn.functional as F
from reference_common import read_idx
from pytorch_reference import Net
from plan_net import channels_last

METHODS = ['saliency', 'integrated-gradients', 'grad-cam']


class SplitNet(Net):
    """The tutorial network (pytorch_reference.Net, its state-dict names), cut at conv2.act for Grad-CAM."""

    def __init__(self, first_conv_channels_last=False):
        super().__init__()
        self.first_conv_channels_last = first_conv_channels_last

    def features(self, x):
        if self.first_conv_channels_last:
            x = channels_last(x)
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        return F.relu(self.conv2(x))

    def head(self, a):
        x = torch.flatten(F.max_pool2d(a, 2), 1)
        return self.fc2(F.relu(self.fc1(x)))

    def forward(self, x):
        return self.head(self.features(x))


def target_logit_sum(logits, targets):
    return logits.gather(1, targets[:, None]).sum()


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--method', choices=METHODS, required=True)
    p.add_argument('--checkpoint', required=True)
    p.add_argument('--images', required=True)
    p.add_argument('--count', type=int, default=10000)
    p.add_argument('--chunk', type=int, default=64)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--steps', type=int, default=64)
    p.add_argument('--channels-last', action='store_true')
    p.add_argument('--maps-out')
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    state = torch.load(a.checkpoint)
    mean, std = float(state['convscope.input_mean']), float(state['convscope.input_std'])
    model = SplitNet(a.channels_last).eval()
    model.load_state_dict({k: v for k, v in state.items() if not k.startswith('convscope.')})
    model.requires_grad_(False)
    images = torch.from_numpy(read_idx(a.images)[:a.count].copy())
    count, (h, w) = images.shape[0], images.shape[1:]

    def standardise(x):
        return x if mean == 0 and std == 1 else (x - mean) / std

    def rows_in_passes(rows):
        return [(s, min(rows, s + a.chunk)) for s in range(0, rows, a.chunk)]

    def saliency(x, targets):
        out = torch.empty_like(x)
        for s, e in rows_in_passes(x.shape[0]):
            leaf = x[s:e].clone().requires_grad_()
            grad, = torch.autograd.grad(target_logit_sum(model(standardise(leaf)), targets[s:e]), leaf)
            out[s:e] = grad.abs()
        return out

    def integrated_gradients(x, targets, scores):
        n = x.shape[0]
        baseline = torch.zeros_like(x)
        alphas = (torch.arange(a.steps, dtype=torch.float32) + 0.5) / a.steps
        # Image-major path points, as convscope's rows: image i's step k is row i * steps + k.
        path = (baseline[:, None] + alphas[None, :, None, None, None] * (x - baseline)[:, None]).reshape(n * a.steps, 1, h, w)
        path_targets = targets.repeat_interleave(a.steps)
        grad_sum = torch.empty_like(path)
        for s, e in rows_in_passes(n * a.steps):
            leaf = path[s:e].clone().requires_grad_()
            grad_sum[s:e], = torch.autograd.grad(target_logit_sum(model(standardise(leaf)), path_targets[s:e]), leaf)
        attributions = (x - baseline) * grad_sum.reshape(n, a.steps, 1, h, w).sum(1) / a.steps
        with torch.no_grad():
            f_baseline = model(standardise(baseline)).gather(1, targets[:, None])[:, 0]
        deltas = attributions.sum((1, 2, 3)) - (scores - f_baseline)
        return attributions, deltas

    def grad_cam(x, targets):
        out = torch.empty_like(x)
        for s, e in rows_in_passes(x.shape[0]):
            with torch.no_grad():
                maps = model.features(standardise(x[s:e]))
            leaf = maps.clone().requires_grad_()
            grad, = torch.autograd.grad(target_logit_sum(model.head(leaf), targets[s:e]), leaf)
            alpha = grad.mean((2, 3), keepdim=True)
            cam = F.relu((alpha * maps).sum(1, keepdim=True))
            out[s:e] = F.interpolate(cam, size=(h, w), mode='bilinear', align_corners=False)
        return out

    def explain(first, n):
        result = torch.empty(n, h, w)
        for start in range(first, first + n, a.chunk):
            x = images[start:min(first + n, start + a.chunk)].unsqueeze(1).float().div_(255)
            with torch.no_grad():
                logits = model(standardise(x))
            targets = logits.argmax(1)
            if a.method == 'saliency':
                maps = saliency(x, targets)
            elif a.method == 'integrated-gradients':
                maps, _deltas = integrated_gradients(x, targets, logits.gather(1, targets[:, None])[:, 0])
            else:
                maps = grad_cam(x, targets)
            result[start - first:start - first + x.shape[0]] = maps[:, 0]
        return result

    first_block = explain(0, min(count, a.chunk))
    if a.maps_out:
        first_block.numpy().astype('<f4').tofile(a.maps_out)
    t0 = time.perf_counter()
    explain(0, count)
    seconds = time.perf_counter() - t0
    print(json.dumps({'imagesPerSecond': count / seconds, 'seconds': seconds, 'images': count,
                      'torch': torch.__version__, 'threads': torch.get_num_threads()}))


if __name__ == '__main__':
    main()
