// The browser demo: runs the exported ONNX model (pixels in [0, 1], (N, C, H, W), standardised inside
// the graph; C is 1 for grey models, 3 for colour ones) with onnxruntime-web on WebAssembly. No framework; served by `convscope demo`.
/* global ort */
'use strict';

// An absolute URL: a relative one would read as a bare module specifier to import().
ort.env.wasm.wasmPaths = new URL('ort/', location.href).href;
// One thread: threads need cross-origin isolation, and one image is fast enough on one.
ort.env.wasm.numThreads = 1;

const $ = (id) => document.getElementById(id);

async function loadJson(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.json();
}

function decodeImages(base64, count, pixels) {
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  return Array.from({ length: count }, (_, i) => bytes.subarray(i * pixels, (i + 1) * pixels));
}

function softmax(row) {
  const top = Math.max(...row);
  const exps = row.map((v) => Math.exp(v - top));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((v) => v / sum);
}

/** The model's input channels (meta.json written before colour models has none: 1). */
function channelsOf(meta) {
  return meta.inputChannels ?? 1;
}

const demo = {
  session: null,
  meta: null,
  samples: [],
  /** Class probabilities for a batch of images (each an array of C*H*W levels 0..255, channel-planar). */
  async probabilities(images) {
    const [h, w] = this.meta.inputSize;
    const size = channelsOf(this.meta) * h * w;
    const input = new Float32Array(images.length * size);
    images.forEach((image, i) => { for (let p = 0; p < size; ++p) input[i * size + p] = image[p] / 255; });
    const output = await this.session.run({ pixels: new ort.Tensor('float32', input, [images.length, channelsOf(this.meta), h, w]) });
    const logits = output.logits.data;
    const classes = this.meta.classes;
    return images.map((_, i) => softmax(Array.from(logits.subarray(i * classes, (i + 1) * classes))));
  },
  /** The predicted class of every test image on the page (what the browser test compares with predict). */
  async classifySamples() {
    const rows = await this.probabilities(this.samples.map((s) => s.image));
    return rows.map((row) => row.indexOf(Math.max(...row)));
  },
};
window.convscopeDemo = demo;

function showProbabilities(row, source) {
  const list = $('probabilities');
  list.replaceChildren();
  const best = row.indexOf(Math.max(...row));
  row.forEach((p, c) => {
    const item = document.createElement('li');
    if (c === best) item.className = 'top';
    const name = document.createElement('span');
    name.textContent = demo.meta.classNames[c] ?? String(c);
    const bar = document.createElement('span');
    bar.className = 'bar';
    bar.style.width = `${(100 * p).toFixed(1)}%`;
    const value = document.createElement('span');
    value.textContent = `${(100 * p).toFixed(1)}%`;
    item.append(name, bar, value);
    list.append(item);
  });
  $('source').textContent = source;
}

function drawSample(canvas, image, [h, w], channels) {
  canvas.width = w;
  canvas.height = h;
  const context = canvas.getContext('2d');
  const data = context.createImageData(w, h);
  const plane = h * w;
  for (let i = 0; i < plane; ++i) {
    const rgb = channels === 3 ? [image[i], image[plane + i], image[2 * plane + i]] : [image[i], image[i], image[i]];
    data.data.set([...rgb, 255], i * 4);
  }
  context.putImageData(data, 0, 0);
}

function setUpSamples() {
  const holder = $('samples');
  demo.samples.forEach((sample, i) => {
    const canvas = document.createElement('canvas');
    canvas.title = `test image ${i}: ${demo.meta.classNames[sample.label] ?? sample.label}`;
    drawSample(canvas, sample.image, demo.meta.inputSize, channelsOf(demo.meta));
    canvas.addEventListener('click', async () => {
      holder.querySelectorAll('canvas').forEach((c) => c.classList.remove('chosen'));
      canvas.classList.add('chosen');
      const [row] = await demo.probabilities([sample.image]);
      showProbabilities(row, `test image ${i}, labelled ${demo.meta.classNames[sample.label] ?? sample.label}`);
    });
    holder.append(canvas);
  });
}

function setUpPad() {
  const pad = $('pad');
  const context = pad.getContext('2d');
  context.lineWidth = 22;
  context.lineCap = 'round';
  context.strokeStyle = '#fff';
  let drawing = false;
  const at = (e) => { const r = pad.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; };
  pad.addEventListener('pointerdown', (e) => {
    drawing = true;
    context.strokeStyle = $('ink').value;
    context.beginPath();
    context.moveTo(...at(e));
  });
  pad.addEventListener('pointermove', (e) => { if (drawing) { context.lineTo(...at(e)); context.stroke(); } });
  const finish = () => { if (drawing) { drawing = false; classifyDrawing(); } };
  pad.addEventListener('pointerup', finish);
  pad.addEventListener('pointerleave', finish);
  $('clear').addEventListener('click', () => { context.fillStyle = '#000'; context.fillRect(0, 0, pad.width, pad.height); });
  $('classify-drawing').addEventListener('click', classifyDrawing);
  context.fillStyle = '#000';
  context.fillRect(0, 0, pad.width, pad.height);
}

// The drawing, scaled down to the model's input size: grey levels (BT.601 luma) for a grey model,
// red, green and blue planes for a colour one.
async function classifyDrawing() {
  const [h, w] = demo.meta.inputSize;
  const small = document.createElement('canvas');
  small.width = w;
  small.height = h;
  const context = small.getContext('2d');
  context.drawImage($('pad'), 0, 0, w, h);
  const rgba = context.getImageData(0, 0, w, h).data;
  const plane = w * h;
  const image = channelsOf(demo.meta) === 3
    ? Array.from({ length: 3 * plane }, (_, k) => rgba[(k % plane) * 4 + Math.floor(k / plane)])
    : Array.from({ length: plane }, (_, i) => Math.round(0.299 * rgba[i * 4] + 0.587 * rgba[i * 4 + 1] + 0.114 * rgba[i * 4 + 2]));
  const [row] = await demo.probabilities([image]);
  showProbabilities(row, 'your drawing');
}

demo.ready = (async () => {
  const [meta, samples] = await Promise.all([loadJson('model/meta.json'), loadJson('model/samples.json')]);
  demo.meta = meta;
  const [h, w] = meta.inputSize;
  demo.samples = decodeImages(samples.images, samples.count, channelsOf(meta) * h * w).map((image, i) => ({ image, label: samples.labels[i] }));
  demo.session = await ort.InferenceSession.create('model/model.onnx', { executionProviders: ['wasm'] });
  setUpSamples();
  setUpPad();
  $('status').textContent = `${meta.description}. Draw in the black square, or click a test image.`;
})().catch((err) => {
  $('status').textContent = `could not start: ${err.message}`;
  throw err;
});
