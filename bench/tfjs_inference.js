'use strict';
// tfjs-node's own evaluation and prediction for the inference benchmark (bench/inference-throughput.ts),
// a peer of bench/pytorch_inference.py and bench/keras_inference.py: tfjs_reference.js's network,
// model.evaluate (loss from logits and accuracy) or model.predict then a softmax, over the same test
// images, batch and threads, read back to the host. Prints one JSON line.
//
// usage: node bench/tfjs_inference.js --task evaluate|predict --images FILE --labels FILE --count N --batch B --threads T
//
// The timed call starts from the uint8 pixels and labels, as the other contenders' do: making the
// input tensor (float32, raw 0..255; the Rescaling layer scales) and the one-hot labels is in it.
// One untimed call first, then one timed.
const { parseArgs, readIdx, loadTfjs, tutorialNetwork } = require('./tfjs_reference');

async function main() {
  const a = parseArgs({ count: 10000, batch: 128, threads: 2 }, ['task']);
  if (a.task !== 'evaluate' && a.task !== 'predict') throw new Error(`--task must be evaluate or predict, not ${a.task}`);
  const tf = loadTfjs(a.threads);
  const images = readIdx(a.images);
  const labels = readIdx(a.labels);
  const [h, w] = [images.dims[1], images.dims[2]];
  const pixels = images.data.subarray(0, a.count * h * w);
  const classes = labels.data.subarray(0, a.count);
  const model = tutorialNetwork(tf);
  model.compile({ optimizer: 'adam', loss: (oneHot, logits) => tf.losses.softmaxCrossEntropy(oneHot, logits), metrics: ['accuracy'] });

  const evaluate = async () => {
    const [xs, ys] = tf.tidy(() => [tf.tensor4d(pixels, [a.count, h, w, 1], 'float32'), tf.oneHot(tf.tensor1d(classes, 'int32'), 10).toFloat()]);
    const [loss, accuracy] = model.evaluate(xs, ys, { batchSize: a.batch });
    const result = [(await loss.data())[0], (await accuracy.data())[0]];
    tf.dispose([xs, ys, loss, accuracy]);
    return result;
  };
  const predict = async () => {
    const xs = tf.tensor4d(pixels, [a.count, h, w, 1], 'float32');
    const probabilities = tf.tidy(() => tf.softmax(model.predict(xs, { batchSize: a.batch })));
    const result = await probabilities.data();
    tf.dispose([xs, probabilities]);
    return result;
  };
  const task = a.task === 'evaluate' ? evaluate : predict;
  await task();
  const started = process.hrtime.bigint();
  await task();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  process.stdout.write(JSON.stringify({
    imagesPerSecond: a.count / seconds, seconds, images: a.count, tfjsNode: tf.version['tfjs-node'], threads: a.threads,
  }) + '\n');
}

main().catch((err) => {
  process.stderr.write(`tfjs_inference: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
