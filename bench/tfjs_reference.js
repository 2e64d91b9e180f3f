'use strict';
// tfjs-node's own training loop (model.fit of the layers API) for the benchmark, a peer of
// bench/pytorch_reference.py and bench/keras_reference.py: the same network (channels-last, as
// TensorFlow has it), batch, optimizer (Adam 1e-3), loss (sparse categorical cross-entropy from
// logits) and threads, on the same data (the IDX files convscope reads, scaled by 1/255 inside the
// step). Prints one JSON line like pytorch_reference.py's.
//
// usage: node bench/tfjs_reference.js --images FILE --labels FILE --steps N --batch B --threads T [--warmup W]
//
// Plain JavaScript, not compiled with the project: tfjs-node lives in .peers/tfjs (scripts/setup-peers.sh,
// an npm project of its own; $CONVSCOPE_TFJS_DIR overrides), never among convscope's dependencies.
// Threads: tfjs-node has no API for them, so TF_NUM_INTRAOP_THREADS and TF_NUM_INTEROP_THREADS (read by
// TensorFlow when tfjs-node creates its context) are set to --threads before it loads.
// Loss: the layers API's sparseCategoricalCrossentropy takes probabilities (no from-logits option), and
// model.fit checks targets against the output's shape, so the labels go in one-hot (made with the
// data, before training) and the loss is tf.losses.softmaxCrossEntropy on the logits: the same value
// as sparse categorical cross-entropy from logits, through TensorFlow's fused softmax cross-entropy.
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');

/**
 * `--key value` pairs of the command line over `defaults` (numbers), with `texts` the keys whose values
 * stay strings; --images and --labels are required.
 */
function parseArgs(defaults, texts = []) {
  const a = { ...defaults };
  const textKeys = ['images', 'labels', ...texts];
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    if (!(key in a) && !textKeys.includes(key)) throw new Error(`unknown option ${argv[i]}`);
    a[key] = textKeys.includes(key) ? argv[i + 1] : Number(argv[i + 1]);
  }
  if (!a.images || !a.labels) throw new Error('--images and --labels are required');
  return a;
}

/** An IDX file (raw or gzip), as bench/pytorch_reference.py's read_idx: its dims and bytes. */
function readIdx(file) {
  let raw = fs.readFileSync(file);
  if (raw[0] === 0x1f && raw[1] === 0x8b) raw = zlib.gunzipSync(raw);
  const ndim = raw[3];
  const dims = [];
  for (let i = 0; i < ndim; ++i) dims.push(raw.readUInt32BE(4 + 4 * i));
  return { dims, data: raw.subarray(4 + 4 * ndim) };
}

/** A seeded permutation of 0..n-1 (mulberry32 and Fisher-Yates). */
function permutation(n, seed) {
  let s = seed >>> 0;
  const random = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const p = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; --i) {
    const j = Math.floor(random() * (i + 1));
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}

/**
 * tfjs-node from .peers/tfjs ($CONVSCOPE_TFJS_DIR overrides), loaded with TensorFlow's thread pools
 * sized to `threads` (TensorFlow reads the variables when tfjs-node creates its context).
 */
function loadTfjs(threads) {
  process.env.TF_NUM_INTRAOP_THREADS = String(threads);
  process.env.TF_NUM_INTEROP_THREADS = String(threads);
  if (process.env.TF_CPP_MIN_LOG_LEVEL === undefined) process.env.TF_CPP_MIN_LOG_LEVEL = '2';
  const dir = process.env.CONVSCOPE_TFJS_DIR || path.join(__dirname, '..', '.peers', 'tfjs');
  return require(require.resolve('@tensorflow/tfjs-node', { paths: [dir] }));
}

/** The tutorial network as tfjs's layers API writes it (logits out; raw 0..255 pixels in). */
function tutorialNetwork(tf) {
  return tf.sequential({
    layers: [
      tf.layers.rescaling({ scale: 1 / 255, inputShape: [28, 28, 1] }),
      tf.layers.conv2d({ filters: 32, kernelSize: 5, padding: 'same', activation: 'relu' }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.conv2d({ filters: 64, kernelSize: 5, padding: 'same', activation: 'relu' }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 1024, activation: 'relu' }),
      tf.layers.dropout({ rate: 0.4 }),
      tf.layers.dense({ units: 10 }),
    ],
  });
}

async function main() {
  const a = parseArgs({ steps: 50, warmup: 5, batch: 128, threads: 2, seed: 42 });
  const tf = loadTfjs(a.threads);

  const images = readIdx(a.images);
  const labels = readIdx(a.labels);
  const n = images.dims[0];
  const pixels = images.dims[1] * images.dims[2];
  // The batches pytorch_reference.py's step(i) takes: a permutation read from (i * batch) % (n - batch).
  const perm = permutation(n, a.seed);
  const total = a.warmup + a.steps;
  const x = new Float32Array(total * a.batch * pixels); // raw 0..255; the Rescaling layer scales in the step
  const y = new Int32Array(total * a.batch);
  for (let i = 0, r = 0; i < total; ++i) {
    const start = (i * a.batch) % (n - a.batch);
    for (let k = 0; k < a.batch; ++k, ++r) {
      const row = perm[start + k];
      for (let p = 0; p < pixels; ++p) x[r * pixels + p] = images.data[row * pixels + p];
      y[r] = labels.data[row];
    }
  }
  const xs = tf.tensor4d(x, [total * a.batch, images.dims[1], images.dims[2], 1]);
  const ys = tf.oneHot(tf.tensor1d(y, 'int32'), 10).toFloat();

  const model = tutorialNetwork(tf);
  const lossFromLogits = (oneHot, logits) => tf.losses.softmaxCrossEntropy(oneHot, logits);
  model.compile({ optimizer: tf.train.adam(1e-3), loss: lossFromLogits });

  // perf_counter's equivalent at the start and at the end of every batch (the batch's loss has been
  // read back by then: tfjs resolves the logs before calling onBatchEnd).
  const stamps = [];
  const now = () => Number(process.hrtime.bigint()) / 1e9;
  await model.fit(xs, ys, {
    batchSize: a.batch, epochs: 1, shuffle: false, verbose: 0,
    callbacks: { onTrainBegin: () => { stamps.push(now()); }, onBatchEnd: () => { stamps.push(now()); } },
  });
  if (stamps.length !== total + 1) throw new Error(`${stamps.length - 1} batches ran, ${total} expected`);
  const seconds = stamps[stamps.length - 1] - stamps[a.warmup];
  process.stdout.write(JSON.stringify({
    imagesPerSecond: (a.steps * a.batch) / seconds, seconds, steps: a.steps,
    tfjsNode: tf.version['tfjs-node'], tensorflow: tf.backend().binding.TF_Version, threads: a.threads,
  }) + '\n');
}

module.exports = { parseArgs, readIdx, loadTfjs, tutorialNetwork };

if (require.main === module) {
  main().catch((err) => {
    process.stderr.write(`tfjs_reference: ${err && err.stack ? err.stack : err}\n`);
    process.exit(1);
  });
}
