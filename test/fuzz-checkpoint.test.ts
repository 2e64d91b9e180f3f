// Mutated checkpoints and TorchScript files (bit flips, truncations, overwritten runs of bytes) fed to
// the loaders: each either loads or fails with a clear error; never a crash, hang or huge allocation.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createModel, loadModel, loadTorchScript } from '../src/index';
import { native } from '../src/core/native';
import { settledLiveTensors } from './helpers';

const CASES = Number(process.env.CONVSCOPE_FUZZ_CASES ?? 400);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-fuzz-ckpt-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 4294967296;
  };
}

function mutate(good: Buffer, random: () => number, kind: number): Buffer {
  const bytes = Buffer.from(good);
  if (kind === 0) {
    const flips = 1 + Math.floor(random() * 8);
    for (let i = 0; i < flips; ++i) bytes[Math.floor(random() * bytes.length)] ^= 1 << Math.floor(random() * 8);
    return bytes;
  }
  if (kind === 1) return bytes.subarray(0, Math.floor(random() * bytes.length));
  const at = Math.floor(random() * bytes.length);
  bytes.fill(Math.floor(random() * 256), at, Math.min(bytes.length, at + 1 + Math.floor(random() * 64)));
  return bytes;
}

const spec = { conv: [{ filters: 4, kernelSize: 3, padding: 'same' as const, pool: true }], dense: [8], dropout: 0 };

test.each([
  ['checkpoint', (file: string) => loadModel(file), (m: ReturnType<typeof createModel>, file: string) => m.save(file)],
  ['TorchScript', (file: string) => loadTorchScript(file), (m: ReturnType<typeof createModel>, file: string) => m.exportTorchScript(file)],
] as const)(`${CASES} mutated %s files give only clear errors`, async (kindName, load, write) => {
  const model = createModel(spec, { seed: 1 });
  const goodFile = path.join(tmp, `good-${kindName}.pt`);
  write(model, goodFile);
  model.dispose();
  const good = fs.readFileSync(goodFile);
  const random = prng(kindName === 'checkpoint' ? 7 : 11);
  const baseline = await settledLiveTensors();
  let refused = 0;
  for (let i = 0; i < CASES; ++i) {
    const file = path.join(tmp, 'mutant.pt');
    fs.writeFileSync(file, mutate(good, random, i % 3));
    const started = Date.now();
    try {
      load(file).dispose();
    } catch (err) {
      refused += 1;
      expect(err).toHaveProperty('message');
      expect((err as Error).message).toMatch(/mutant\.pt/);
    }
    expect(Date.now() - started).toBeLessThan(5000);
  }
  expect(refused).toBeGreaterThan(CASES * 0.9);
  expect(native().liveTensors()).toBe(baseline);
}, 120000);
