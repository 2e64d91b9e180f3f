// ROAD, RemOve And Debias (Rong, Leemann et al. 2022, "A Consistent and Efficient Evaluation
// Strategy for Attribution Methods"): deletion without the artefact of black pixels. Setting pixels
// to a constant leaks where they were (the mask's shape is information the model can use);
// ROAD fills the removed pixels by noisy linear imputation instead: each removed pixel becomes the
// weighted mean of its 8 neighbours (weight 1/6 for the 4 direct ones, 1/12 for the diagonals,
// known or themselves imputed; the weights of neighbours outside the image dropped), the sparse
// linear system solved exactly (conjugate gradients), plus Gaussian noise (sigma `noise`, 0.01).
//
// For each fraction f of the pixels (default 0.1, 0.2, ..., 0.9): MoRF removes the fraction f with the
// largest attributions, LeRF the fraction f with the smallest; the target's softmax probability is
// read on each imputed image. The combined score (pytorch-grad-cam's ROADCombined) is the mean over
// the fractions of (p_LeRF - p_MoRF) / 2: high when removing the map's top pixels hurts the model
// and removing its bottom pixels does not. A map and its negation get opposite scores (the noise
// field is drawn per image and fraction, the same for both orders), and a random order scores
// about 0; the random order's score is returned beside the map's as the reference.
//
// On a colour image a removed pixel is removed in every channel (ranked by the per-pixel map, the
// sum over the map's channels), each channel imputed from its own neighbours, each value with its
// own noise.
import type { CnnModel } from '../nn/model';
import { checkInteger, checkKnownKeys, checkNumber, checkObject, expected } from '../util/validate';
import type { Explanation } from './explain';
import { attributionOrder, explainedImages, softmaxAt } from './faithfulness';
import { imageSeed } from './method';
import { normalSource, uniformSource } from './random';
import { ProbeRunner } from './runner';

/** Options of {@link road}. */
export interface RoadOptions {
  /** Fractions of the pixels removed (default 0.1, 0.2, ..., 0.9), each in (0, 1). */
  fractions?: number[];
  /** The imputation noise's standard deviation, in pixel units of [0, 1] (default 0.01). */
  noise?: number;
  /** Seed of the noise and of the random order (default 0). */
  seed?: number;
  /** Network inputs per pass (default 64). */
  chunkSize?: number;
}

/** What {@link road} returns (per image, and the mean over the images). */
export interface RoadResult {
  fractions: number[];
  /** Per image: mean over the fractions of (p_LeRF - p_MoRF) / 2 for the map's order. */
  combined: Float64Array;
  /** The same for a random pixel order (seeded per image): the reference, about 0. */
  randomCombined: Float64Array;
  /** [image][fraction]: the target's probability after removing the most (morf) or least (lerf) relevant pixels. */
  morf: Float32Array;
  lerf: Float32Array;
  mean: { combined: number; randomCombined: number };
}

const DEFAULT_FRACTIONS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];
const DEFAULT_NOISE = 0.01;
const DIRECT_WEIGHT = 1 / 6;
const DIAGONAL_WEIGHT = 1 / 12;
const NEIGHBOURS: [number, number, number][] = [
  [-1, 0, DIRECT_WEIGHT], [1, 0, DIRECT_WEIGHT], [0, -1, DIRECT_WEIGHT], [0, 1, DIRECT_WEIGHT],
  [-1, -1, DIAGONAL_WEIGHT], [-1, 1, DIAGONAL_WEIGHT], [1, -1, DIAGONAL_WEIGHT], [1, 1, DIAGONAL_WEIGHT],
];
/** Conjugate gradients stop when the residual's norm is below this times the right-hand side's. */
const CG_TOLERANCE = 1e-7;

/**
 * Linear imputation: the removed pixels (removed[p] = 1) of an h x w image, each equal to the
 * weighted mean of its neighbours inside the image, solved as one symmetric positive definite
 * system by conjugate gradients (a removed region that touches no kept pixel stays 0). Returns a copy.
 */
export function imputeLinear(image: ArrayLike<number>, removed: Uint8Array, h: number, w: number): Float32Array {
  const n = h * w;
  const unknowns: number[] = [];
  const slot = new Int32Array(n).fill(-1);
  for (let p = 0; p < n; ++p) if (removed[p]) { slot[p] = unknowns.length; unknowns.push(p); }
  const m = unknowns.length;
  const out = Float32Array.from(image as ArrayLike<number>);
  if (m === 0) return out;
  // Row k: diag_k u_k - sum over removed neighbours w u_j = sum over kept neighbours w x_j.
  const diag = new Float64Array(m);
  const rhs = new Float64Array(m);
  const links: [number, number][][] = unknowns.map(() => []);
  unknowns.forEach((p, k) => {
    const y = Math.floor(p / w);
    const x = p % w;
    for (const [dy, dx, weight] of NEIGHBOURS) {
      const ny = y + dy;
      const nx = x + dx;
      if (ny < 0 || ny >= h || nx < 0 || nx >= w) continue;
      const q = ny * w + nx;
      diag[k] += weight;
      if (removed[q]) links[k].push([slot[q], weight]);
      else rhs[k] += weight * image[q];
    }
  });
  const apply = (v: Float64Array, into: Float64Array) => {
    for (let k = 0; k < m; ++k) {
      let s = diag[k] * v[k];
      for (const [j, weight] of links[k]) s -= weight * v[j];
      into[k] = s;
    }
  };
  const u = new Float64Array(m);
  const r = Float64Array.from(rhs);
  const d = Float64Array.from(r);
  const ad = new Float64Array(m);
  const dot = (a: Float64Array, b: Float64Array) => { let s = 0; for (let k = 0; k < m; ++k) s += a[k] * b[k]; return s; };
  let rr = dot(r, r);
  const stop = CG_TOLERANCE * CG_TOLERANCE * Math.max(rr, 1e-30);
  for (let it = 0; it < 4 * m && rr > stop; ++it) {
    apply(d, ad);
    const alpha = rr / dot(d, ad);
    for (let k = 0; k < m; ++k) { u[k] += alpha * d[k]; r[k] -= alpha * ad[k]; }
    const next = dot(r, r);
    const beta = next / rr;
    rr = next;
    for (let k = 0; k < m; ++k) d[k] = r[k] + beta * d[k];
  }
  unknowns.forEach((p, k) => { out[p] = u[k]; });
  return out;
}

function checkFractions(value: unknown): number[] {
  if (value === undefined) return DEFAULT_FRACTIONS;
  if (!Array.isArray(value) || value.length === 0) throw new TypeError(expected('a non-empty array of fractions in (0, 1)', 'fractions', value));
  return value.map((f, i) => checkNumber(f, `fractions[${i}]`, 0, 1, { exclusiveMin: true, exclusiveMax: true }));
}

/**
 * ROAD's MoRF and LeRF probabilities and combined score for an explanation's maps, beside a random
 * order's (see the file's header and docs/probing.md). `images` are the images explained.
 * @example const r = await road(model, images, await explain(model, images, { method: 'integrated-gradients' }));
 */
export async function road(model: CnnModel, images: Uint8Array | Float32Array, explanation: Explanation, options: RoadOptions = {}): Promise<RoadResult> {
  model.check('road');
  const o = checkObject(options, 'options');
  checkKnownKeys(o, 'road options', ['fractions', 'noise', 'seed', 'chunkSize']);
  const { channels, h, w, n, values, count, pixels, order: pixelMap } = explainedImages(model, images, explanation);
  const fractions = checkFractions(o.fractions);
  const noise = o.noise === undefined ? DEFAULT_NOISE : checkNumber(o.noise, 'noise', 0, 1);
  const seed = o.seed === undefined ? 0 : checkInteger(o.seed, 'seed', 0, 0xffffffff);
  const chunkSize = o.chunkSize === undefined ? 64 : checkInteger(o.chunkSize, 'chunkSize', 1, 1 << 16);

  const F = fractions.length;
  // Per image: the map's order and a random one (Fisher-Yates, seeded per image).
  const orders = Array.from({ length: count }, (_, i) => {
    const random = Int32Array.from({ length: n }, (_, p) => p);
    const uniform = uniformSource(imageSeed(seed, i, 1));
    for (let p = n - 1; p > 0; --p) {
      const j = Math.floor(uniform() * (p + 1));
      [random[p], random[j]] = [random[j], random[p]];
    }
    return [attributionOrder(pixelMap.subarray(i * n, (i + 1) * n)), random];
  });
  // Rows: image, order (map, random), fraction, kind (MoRF, LeRF).
  const KINDS = 2;
  const perImage = 2 * F * KINDS;
  const runner = new ProbeRunner(model, chunkSize);
  let logits: Float32Array;
  try {
    logits = await runner.logits(count * perImage, (row, into) => {
      const kind = row % KINDS;
      const f = Math.floor(row / KINDS) % F;
      const which = Math.floor(row / (KINDS * F)) % 2;
      const image = Math.floor(row / perImage);
      const order = orders[image][which];
      const k = Math.round(fractions[f] * n);
      const removed = new Uint8Array(n);
      for (let j = 0; j < k; ++j) removed[kind === 0 ? order[j] : order[n - 1 - j]] = 1;
      // One noise field per image and fraction, whichever pixels it lands on.
      const normal = normalSource(imageSeed(seed, image, 2 + f));
      for (let c = 0; c < channels; ++c) {
        const at = image * values + c * n;
        const filled = imputeLinear(pixels.subarray(at, at + n), removed, h, w);
        for (let p = 0; p < n; ++p) {
          const e = normal();
          into[c * n + p] = removed[p] ? filled[p] + noise * e : filled[p];
        }
      }
    });
  } finally {
    runner.dispose();
  }
  const probability = (image: number, which: number, f: number, kind: number) =>
    softmaxAt(logits, ((((image * 2 + which) * F + f) * KINDS) + kind) * model.classes, model.classes, explanation.targets[image]);
  const morf = new Float32Array(count * F);
  const lerf = new Float32Array(count * F);
  const combined = new Float64Array(count);
  const randomCombined = new Float64Array(count);
  for (let i = 0; i < count; ++i) {
    for (let f = 0; f < F; ++f) {
      morf[i * F + f] = probability(i, 0, f, 0);
      lerf[i * F + f] = probability(i, 0, f, 1);
      combined[i] += (lerf[i * F + f] - morf[i * F + f]) / 2 / F;
      randomCombined[i] += (probability(i, 1, f, 1) - probability(i, 1, f, 0)) / 2 / F;
    }
  }
  const mean = (v: Float64Array) => v.reduce((a, b) => a + b, 0) / v.length;
  return { fractions, combined, randomCombined, morf, lerf, mean: { combined: mean(combined), randomCombined: mean(randomCombined) } };
}
