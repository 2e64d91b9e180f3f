"""PyTorch 2.x's side of `npm run bench -- time-to-accuracy`: the recipe of convscope's preset (given
as JSON by bench/time-to-accuracy.ts) written in PyTorch, trained and evaluated on the same data and
threads, timed the same way: the epochs' training steps and evaluations, not data loading or building
the model. Prints one JSON line: the final epoch's test accuracy, the seconds, and every epoch's.

usage: python3 bench/pytorch_time_to_accuracy.py --recipe FILE --train-images FILE --train-labels FILE
       --test-images FILE --test-labels FILE --seed N --threads T

The recipe's tricks, as convscope does them (src/train/): a network from convscope's plan
(plan_net.py, batch-norm convolutions channels-last), inputs standardised with the training set's mean
and std, a fresh shuffle per epoch, AdamW or Adam, OneCycleLR without momentum cycling (convscope's
one-cycle schedule), label smoothing, random shifts (padding with a blank pixel) and left-right flips
per image, an exponential moving average of the weights and batch-norm buffers (with TensorFlow's
num_updates warm-up), evaluation of the average with the logits averaged over test-time views (the
image, moved by `shift` pixels down-right and up-left, each mirrored when `flip`).
"""
import argparse, json, time
import torch
import torch.nn.functional as F
from reference_common import read_idx
from plan_net import PlanNet


def standardised(images, mean, std):
    return images.unsqueeze(1).float().div_(255).sub_(mean).div_(std)


def augment(x, shift, flip, blank):
    """Each image moved by up to `shift` pixels (a random crop of the padded image) and mirrored with probability 1/2."""
    n, _, h, w = x.shape
    if shift > 0:
        padded = F.pad(x, [shift] * 4, value=blank)
        rows = torch.randint(0, 2 * shift + 1, (n, 1)) + torch.arange(h).unsqueeze(0)
        cols = torch.randint(0, 2 * shift + 1, (n, 1)) + torch.arange(w).unsqueeze(0)
        x = padded.gather(2, rows.view(n, 1, h, 1).expand(n, 1, h, w + 2 * shift))
        x = x.gather(3, cols.view(n, 1, 1, w).expand(n, 1, h, w))
    if flip:
        mirrored = torch.rand(n, 1, 1, 1) < 0.5
        x = torch.where(mirrored, x.flip(3), x)
    return x


def view(x, dy, dx, flip, blank):
    """The batch mirrored (if asked), then moved dy pixels down and dx right."""
    out = x.flip(3) if flip else x
    if dy == 0 and dx == 0:
        return out
    h, w = x.shape[2], x.shape[3]
    pad = max(abs(dy), abs(dx))
    padded = F.pad(out, [pad] * 4, value=blank)
    return padded[:, :, pad - dy:pad - dy + h, pad - dx:pad - dx + w]


def tta_views(tta):
    offsets = [(0, 0)] + ([(tta['shift'], tta['shift']), (-tta['shift'], -tta['shift'])] if tta['shift'] > 0 else [])
    return [(dy, dx, f) for f in ([False, True] if tta['flip'] else [False]) for dy, dx in offsets]


class WeightAverage:
    """The average of every floating parameter and buffer (integer buffers copied), as src/train/ema.ts keeps it."""

    def __init__(self, model, ema):
        self.ema = ema
        self.sources = list(model.parameters()) + list(model.buffers())
        self.averages = [t.detach().clone() for t in self.sources]

    @torch.no_grad()
    def after_step(self, run_step):
        steps = run_step + 1
        if steps % self.ema['every'] != 0:
            return
        update = steps // self.ema['every']
        decay = min(self.ema['decay'], (1 + update) / (10 + update)) if self.ema['warmup'] else self.ema['decay']
        floating = [(a, s) for a, s in zip(self.averages, self.sources) if a.is_floating_point()]
        # One foreach call for the list, as convscope's native update (and torch.optim's foreach paths).
        torch._foreach_lerp_([a for a, _ in floating], [s for _, s in floating], 1 - decay)
        for a, s in zip(self.averages, self.sources):
            if not a.is_floating_point():
                a.copy_(s)

    @torch.no_grad()
    def swap(self):
        for a, s in zip(self.averages, self.sources):
            kept = s.detach().clone()
            s.copy_(a)
            a.copy_(kept)


@torch.no_grad()
def evaluate(model, images, labels, mean, std, recipe):
    model.eval()
    blank = -mean / std
    views = tta_views(recipe['tta'])
    correct = 0
    for start in range(0, images.shape[0], recipe['evalChunkSize']):
        x = standardised(images[start:start + recipe['evalChunkSize']], mean, std)
        logits = sum(model(view(x, dy, dx, f, blank)) for dy, dx, f in views) / len(views)
        correct += int((logits.argmax(1) == labels[start:start + recipe['evalChunkSize']]).sum())
    return correct / images.shape[0]


@torch.no_grad()
def whiten_first_convolution(model, plan, images, mean, std, settings):
    """convscope's `whiten` (native/whitening.cc): the first filters become the whitening filters of the
    first images' k x k patches, by decreasing variance, in pairs of opposite sign."""
    conv = plan['conv'][0]
    k = conv['kernelSize']
    x = standardised(images[:settings['images']], mean, std).double()
    patches = F.unfold(x, k).transpose(1, 2).reshape(-1, k * k)
    values, vectors = torch.linalg.eigh(torch.cov(patches.t()))
    values, vectors = values.flip(0), vectors.flip(1)
    filters = (vectors.t() / (values + settings['eps']).sqrt().unsqueeze(1)).reshape(k * k, 1, k, k)
    paired = torch.stack([filters, -filters], 1).reshape(2 * k * k, 1, k, k)
    weight = getattr(model, conv['name']).weight
    count = min(weight.shape[0], 2 * k * k)
    weight[:count] = paired[:count].float()


def main():
    p = argparse.ArgumentParser()
    for name in ['--recipe', '--train-images', '--train-labels', '--test-images', '--test-labels']:
        p.add_argument(name, required=True)
    p.add_argument('--seed', type=int, default=42)
    p.add_argument('--threads', type=int, default=2)
    a = p.parse_args()
    recipe = json.load(open(a.recipe))
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    train_images = torch.from_numpy(read_idx(a.train_images).copy())
    train_labels = torch.from_numpy(read_idx(a.train_labels).copy()).long()
    test_images = torch.from_numpy(read_idx(a.test_images).copy())
    test_labels = torch.from_numpy(read_idx(a.test_labels).copy()).long()
    pixels = train_images.float().div(255)
    mean, std = float(pixels.mean()), float(pixels.std(unbiased=False))
    if not recipe['standardize']:
        mean, std = 0.0, 1.0
    model = PlanNet(recipe['plan'], channels_last=True)
    if recipe.get('whiten'):
        whiten_first_convolution(model, recipe['plan'], train_images, mean, std, recipe['whiten'])
    kind = recipe['optimizer']
    if kind not in ('adam', 'adamw'):
        raise SystemExit(f'the PyTorch recipe takes adam or adamw, not {kind}')
    make = torch.optim.AdamW if kind == 'adamw' else torch.optim.Adam
    if recipe['weightDecayOn'] == 'weights':
        # Decay on convolution and dense weights only (the plan's 'penalised' ones), as convscope's weightDecayOn.
        penalised = {p['name'] for p in recipe['plan']['parameters'] if p['penalised']}
        named = list(model.named_parameters())
        groups = [{'params': [p for n, p in named if n in penalised]},
                  {'params': [p for n, p in named if n not in penalised], 'weight_decay': 0.0}]
        opt = make(groups, lr=recipe['learningRate'], weight_decay=recipe['weightDecay'])
    else:
        opt = make(model.parameters(), lr=recipe['learningRate'], weight_decay=recipe['weightDecay'])
    n = train_images.shape[0]
    # Progressive batch sizes: one per epoch, the last one for later epochs (convscope's batchSizes).
    batches = [recipe['batchSizes'][min(e, len(recipe['batchSizes']) - 1)] if recipe['batchSizes'] else recipe['batchSize']
               for e in range(recipe['epochs'])]
    total = sum((n + b - 1) // b for b in batches)
    schedule = None
    if recipe['schedule'] == 'one-cycle':
        rise = recipe['warmupSteps'] / total if recipe['warmupSteps'] > 0 else 0.3
        schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe['learningRate'], total_steps=total, pct_start=rise,
                                                       anneal_strategy='cos', cycle_momentum=False, div_factor=25, final_div_factor=1e4)
    elif recipe['schedule'] != 'constant' or recipe['warmupSteps'] > 0:
        raise SystemExit(f"the PyTorch recipe takes one-cycle or constant schedules, not {recipe['schedule']}")
    average = WeightAverage(model, recipe['ema']) if recipe['ema'] else None
    blank = -mean / std
    epochs = []
    run_step = 0
    for epoch in range(recipe['epochs']):
        started = time.perf_counter()
        model.train()
        order = torch.randperm(n)
        batch = batches[epoch]
        for s in range((n + batch - 1) // batch):
            rows = order[s * batch:(s + 1) * batch]
            x = augment(standardised(train_images[rows], mean, std), recipe['shift'], recipe['flip'], blank)
            loss = F.cross_entropy(model(x), train_labels[rows], label_smoothing=recipe['labelSmoothing'])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if schedule:
                schedule.step()
            if average:
                average.after_step(run_step)
            run_step += 1
        trained = time.perf_counter()
        if average:
            average.swap()
        accuracy = evaluate(model, test_images, test_labels, mean, std, recipe)
        if average:
            average.swap()
        done = time.perf_counter()
        epochs.append({'epoch': epoch + 1, 'testAccuracy': accuracy, 'seconds': trained - started, 'evaluationSeconds': done - trained})
    print(json.dumps({'accuracy': epochs[-1]['testAccuracy'], 'seconds': sum(e['seconds'] + e['evaluationSeconds'] for e in epochs),
                      'epochs': epochs, 'torch': torch.__version__, 'threads': torch.get_num_threads()}))


if __name__ == '__main__':
    main()
