// Any 8-bit image set in IDX files (EMNIST, KMNIST, or your own) from a folder.
//
// A set is four files sharing a prefix: <prefix>train-images-idx3-ubyte, <prefix>train-labels-idx1-ubyte
// and the test pair named t10k- or test- (each raw or .gz). EMNIST's folder holds several sets
// (emnist-letters-, emnist-digits-, ...): the prefix, without its trailing '-', picks one
// (`--dataset emnist-letters --data-dir <folder>`); a folder with one set needs none.
// Class names, when the folder has them: <prefix>mapping.txt (EMNIST: "label code-point" lines),
// *classmap.csv (KMNIST: "index,codepoint,char" with a header), or classes.txt (one name a line);
// else each class is named by its index, and the class count is the largest label + 1.
// EMNIST's images are stored transposed (as published); they are used as stored.
// No checksums: these sets have no sums convscope knows; the files' structure is checked instead.

import { readdirSync, statSync } from 'fs';
import { join } from 'path';
import { decodeIdxBytes, readIdxBytes } from '../formats/idx';
import { readRegularTextFile } from '../util/fs-read';
import type { Dataset, DatasetSourceKind } from './dataset-types';
import { idxSplit } from './idx-split';

const SET_FILE = /^(.*?)(train|t10k|test)-(images-idx3|labels-idx1)-ubyte(\.gz)?$/;
const MAX_NAMES_BYTES = 1024 ** 2;
const MAX_CLASSES = 256;

interface IdxSet {
  prefix: string;
  files: Partial<Record<'trainImages' | 'trainLabels' | 'testImages' | 'testLabels', string>>;
}

/** The IDX sets in `dir`, by prefix (raw files preferred over .gz). */
export function idxSetsIn(dir: string): Map<string, IdxSet> {
  const sets = new Map<string, IdxSet>();
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch {
    return sets;
  }
  for (const name of names) {
    const match = SET_FILE.exec(name);
    if (!match) continue;
    const [, prefix, split, kind, gz] = match;
    const set = sets.get(prefix) ?? { prefix, files: {} };
    const slot = `${split === 'train' ? 'train' : 'test'}${kind.startsWith('images') ? 'Images' : 'Labels'}` as keyof IdxSet['files'];
    if (set.files[slot] === undefined || !gz) set.files[slot] = join(dir, name);
    sets.set(prefix, set);
  }
  return sets;
}

/** The prefix as a name: 'emnist-letters-' -> 'emnist-letters'. */
function setName(prefix: string): string {
  return prefix.replace(/[-_.]+$/, '');
}

function chooseSet(dir: string, wanted: string | undefined): IdxSet {
  const sets = [...idxSetsIn(dir).values()];
  const listed = sets.map((s) => (s.prefix === '' ? '(no prefix)' : setName(s.prefix))).join(', ');
  let set: IdxSet | undefined;
  if (wanted !== undefined) {
    set = sets.find((s) => setName(s.prefix) === wanted || s.prefix === wanted);
    if (!set) throw new Error(`${dir}: expected IDX files named ${wanted}-train-images-idx3-ubyte[.gz] etc. but found ${sets.length > 0 ? `the sets ${listed}` : 'no IDX files'}`);
  } else if (sets.length === 1) set = sets[0];
  else if (sets.length === 0) throw new Error(`${dir}: expected IDX files (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-... or test-..., raw or .gz) but found none`);
  else throw new Error(`${dir}: holds several IDX sets (${listed}); name one as the dataset, e.g. --dataset ${setName(sets[0].prefix)} --data-dir ${dir}`);
  const missing = (['trainImages', 'trainLabels', 'testImages', 'testLabels'] as const).filter((slot) => set.files[slot] === undefined);
  if (missing.length > 0) {
    const file = { trainImages: 'train-images-idx3-ubyte', trainLabels: 'train-labels-idx1-ubyte', testImages: 't10k-images-idx3-ubyte', testLabels: 't10k-labels-idx1-ubyte' };
    throw new Error(`${dir}: the IDX set ${set.prefix === '' ? '' : `"${setName(set.prefix)}" `}is missing ${missing.map((slot) => `${set.prefix}${file[slot]}[.gz]`).join(', ')}`);
  }
  return set;
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** Class names from the folder's names file, indexed by label, or undefined when it has none. */
function namesFromFolder(dir: string, prefix: string): { names: (string | undefined)[]; file: string } | undefined {
  const lines = (file: string) => readRegularTextFile(file, MAX_NAMES_BYTES).split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0);
  const mapping = join(dir, `${prefix}mapping.txt`);
  if (isFile(mapping)) {
    const names: (string | undefined)[] = [];
    for (const [i, line] of lines(mapping).entries()) {
      const [label, code] = line.split(/\s+/).map(Number);
      if (!Number.isInteger(label) || label < 0 || label >= MAX_CLASSES || !Number.isInteger(code)) {
        throw new Error(`${mapping}: line ${i + 1}: expected "<label> <unicode code point>" but found "${line}"`);
      }
      names[label] = String.fromCodePoint(code);
    }
    return { names, file: mapping };
  }
  const csv = readdirSync(dir).sort().find((name) => name.endsWith('classmap.csv'));
  if (csv) {
    const rows = lines(join(dir, csv));
    const names: (string | undefined)[] = [];
    for (const [i, row] of rows.entries()) {
      const [index, , char] = row.split(',');
      if (i === 0 && !/^\d+$/.test(index)) continue; // the header
      if (!/^\d+$/.test(index) || Number(index) >= MAX_CLASSES) throw new Error(`${join(dir, csv)}: line ${i + 1}: expected "index,codepoint,char" but found "${row}"`);
      names[Number(index)] = char ?? index;
    }
    return { names, file: join(dir, csv) };
  }
  const classes = join(dir, 'classes.txt');
  if (isFile(classes)) return { names: lines(classes), file: classes };
  return undefined;
}

/**
 * Loads an IDX set from `dir` (see the header).
 * @throws Error naming the folder or file: no set, several sets and none named, a missing file,
 *   non-8-bit or misshapen arrays, counts that differ, labels without a class name
 * @example loadIdxFolder('/data/emnist', 'emnist-letters', 'option').classNames[1] // 'A'
 */
export function loadIdxFolder(dir: string, setWanted: string | undefined, kind: DatasetSourceKind): Dataset {
  const set = chooseSet(dir, setWanted);
  const files = set.files as Required<IdxSet['files']>;
  const read = (file: string) => decodeIdxBytes(readIdxBytes(file));
  const [trainImages, trainLabels, testImages, testLabels] = [files.trainImages, files.trainLabels, files.testImages, files.testLabels].map(read);
  const fromFile = namesFromFolder(dir, set.prefix);
  let classCount: number;
  if (fromFile) classCount = fromFile.names.length;
  else {
    let largest = 0;
    for (const labels of [trainLabels, testLabels]) for (const label of labels.data) largest = Math.max(largest, label);
    classCount = largest + 1;
  }
  const train = idxSplit(trainImages, trainLabels, files.trainImages, files.trainLabels, classCount);
  const test = idxSplit(testImages, testLabels, files.testImages, files.testLabels, classCount);
  // EMNIST letters use labels 1..26: a label the names file skips is named by its index.
  const classNames = Array.from({ length: classCount }, (_, i) => fromFile?.names[i] ?? String(i));
  return { name: set.prefix === '' ? dir : setName(set.prefix), train, test, classNames, source: { kind, dir } };
}
