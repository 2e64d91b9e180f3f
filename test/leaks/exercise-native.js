// Exercises every native entry point on a tiny model, for valgrind's memcheck (npm run test:leaks).
// Plain JS on the built addon so valgrind runs nothing but node and convscope.
const path = require('path');
const addon = require(path.join(__dirname, '..', '..', 'build', 'Release', 'convscope.node'));
const { ops } = addon;

addon.setNumThreads(1);
addon.manualSeed(1);
const params = [
  ['conv1.weight', ops.uniform([2, 1, 3, 3], -0.3, 0.3)], ['conv1.bias', ops.uniform([2], -0.3, 0.3)],
  ['fc1.weight', ops.uniform([10, 2 * 4 * 4], -0.1, 0.1)], ['fc1.bias', ops.uniform([10], -0.1, 0.1)],
];
for (const [, t] of params) t.requiresGrad = true;
const images = new addon.Tensor(new Uint8Array(16 * 8 * 8).map((_, i) => (i * 37) % 256), [16, 8, 8]);
const labels = new addon.Tensor(new Uint8Array(16).map((_, i) => i % 10), [16]);
const order = ops.randperm(16, 3);

// Eager: a few steps op by op.
const optimizer = new addon.Optimizer(params.map((p) => p[1]), { kind: 'adam', learningRate: 1e-2 });
for (let start = 0; start < 16; start += 8) {
  const made = [];
  const keep = (t) => { made.push(t); return t; };
  const [x, y] = ops.gatherBatch(images, labels, order, start, start + 8, 0, 1);
  made.push(x, y);
  let h = keep(ops.conv2d(x, params[0][1], params[1][1], [1, 1], [1, 1, 1, 1]));
  // The first batch pools through libtorch's ops, the second through the fused op (native/pool_activation.h).
  if (start === 0) h = keep(ops.maxPool2d(keep(ops.activation(h, 'relu')), 2, 2));
  else h = keep(ops.maxPoolActivation(h, 'relu', 0));
  h = keep(ops.flatten(h));
  h = keep(ops.dropout(h, 0.2, true));
  const logits = keep(ops.linear(h, params[2][1], params[3][1]));
  const loss = keep(ops.add(keep(ops.crossEntropy(logits, y)), keep(ops.mulScalar(keep(ops.sumAbs([params[0][1], params[2][1]])), 1e-4))));
  optimizer.zeroGrad();
  loss.backward();
  optimizer.step();
  ops.countCorrect(logits, y);
  keep(ops.confusion(keep(ops.argmax(logits, 1)), y, 10)).toTypedArray();
  // Evaluation's forward: the fused op's output-only pass (no gradient to keep).
  const previous = ops.setGradEnabled(false);
  keep(ops.maxPoolActivation(keep(ops.conv2d(x, params[0][1], params[1][1], [1, 1], [1, 1, 1, 1], true)), 'leaky_relu', 0.01));
  ops.setGradEnabled(previous);
  for (const t of made) t.dispose();
}

// Errors thrown from native code must not leak what they allocated.
for (const bad of [() => ops.linear(images, labels, null), () => ops.maxPoolActivation(images, 'leaky_relu', -1), () => new addon.Tensor(new Float32Array(3), [2, 2]), () => ops.zeros([2], 'nope')]) {
  try { bad(); } catch { /* expected */ }
}

// Checkpoints and optimizer state.
const bytes = addon.encodeStateDict(Object.fromEntries([...params, ['convscope.meta', '{}']]));
const decoded = addon.decodeStateDict(bytes);
for (const v of Object.values(decoded)) if (typeof v !== 'string') v.dispose();
optimizer.loadState(optimizer.saveState());

// The scripted path: compile, forward, one native epoch, save, load.
const source = [
  'def forward(self, x):',
  '    x = convscope.conv2d(x, self.conv1.weight, self.conv1.bias, [1, 1], [1, 1])',
  '    x = convscope.max_pool2x2_act(x, 0.01)',
  '    return torch.linear(torch.flatten(x, 1), self.fc1.weight, self.fc1.bias)',
].join('\n') + '\n';
const script = new addon.ScriptModel({ source, parameters: params });
const saved = script.save();
const loaded = new addon.ScriptModel({ bytes: saved });
loaded.dispose();
const job = addon.trainEpoch({ model: script, optimizer, images, labels, order, batchSize: 8 }, () => {});
job.promise.then(() => {
  for (const [, t] of script.namedParameters()) t.dispose();
  script.dispose();
  optimizer.dispose();
  for (const [, t] of params) t.dispose();
  for (const t of [images, labels, order]) t.dispose();
  process.stdout.write(`live tensors at exit: ${addon.liveTensors()}\n`);
  if (addon.liveTensors() !== 0) process.exitCode = 1;
});
