"""A convscope network as a PyTorch module, built from its plan (`model.plan` in TypeScript, as JSON)
with PyTorch's own layers: nn.Conv2d, nn.BatchNorm2d/1d, nn.Linear, registered in the plan's order so
that state-dict names, order and seeded initialisation are convscope's. An independent implementation
for the batch-norm tests (test/batch-norm.test.ts) and the batch-norm benchmark (pytorch_reference.py
--plan).

channels_last=True computes every batch-norm convolution on channels-last tensors, as convscope does
on the CPU (PyTorch's CPU recipe: its batch norm is several times faster in that layout)."""
import torch
import torch.nn as nn
import torch.nn.functional as F

ACTIVATIONS = {
    'relu': F.relu, 'elu': F.elu, 'tanh': torch.tanh, 'sigmoid': torch.sigmoid,
    'leaky_relu': lambda x: F.leaky_relu(x, 0.01),  # LEAKY_RELU_SLOPE in src/core/native.ts
}


def channels_last(x):
    """x in channels-last memory, as convscope lays out a batch-norm convolution's input. One channel
    (the network's input) only has its strides relabelled: contiguous() would keep NCHW strides, and the
    convolution would then answer in NCHW."""
    if x.size(1) == 1 and x.is_contiguous():
        return x.as_strided(x.size(), [x.size(2) * x.size(3), 1, x.size(3), 1])
    return x.contiguous(memory_format=torch.channels_last)


class PlanNet(nn.Module):
    def __init__(self, plan, channels_last=True):
        super().__init__()
        self.plan = plan
        self.channels_last = channels_last
        for c in plan['conv']:
            setattr(self, c['name'], nn.Conv2d(c['inChannels'], c['outChannels'], c['kernelSize'], stride=c['stride'], bias=c['bias']))
            if c['batchNorm']:
                setattr(self, c['batchNorm'], nn.BatchNorm2d(c['outChannels']))
        for d in plan['dense']:
            setattr(self, d['name'], nn.Linear(d['inFeatures'], d['outFeatures'], bias=d['bias']))
            if d['batchNorm']:
                setattr(self, d['batchNorm'], nn.BatchNorm1d(d['outFeatures']))

    def forward(self, x):
        for c in self.plan['conv']:
            x = F.pad(x, c['padding'])  # [left, right, top, bottom], TensorFlow's 'same'
            if c['batchNorm'] and self.channels_last:
                x = channels_last(x)
            x = getattr(self, c['name'])(x)
            if c['batchNorm']:
                x = getattr(self, c['batchNorm'])(x)
            x = ACTIVATIONS[c['activation']](x)
            if c['pool']:
                x = F.max_pool2d(x, 2)
            if c['dropout'] > 0:
                x = F.dropout(x, c['dropout'], self.training)
        x = x.mean((2, 3)) if self.plan['globalAvgPool'] else torch.flatten(x, 1)
        for d in self.plan['dense']:
            x = getattr(self, d['name'])(x)
            if d['batchNorm']:
                x = getattr(self, d['batchNorm'])(x)
            if d['activation']:
                x = ACTIVATIONS[d['activation']](x)
            if d['dropout'] > 0:
                x = F.dropout(x, d['dropout'], self.training)
        return x
