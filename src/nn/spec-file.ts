// A CnnSpec from a JSON file (`convscope train --spec spec.json`): parsed, every key checked against
// the spec's own with its path (a misspelt `conv[1].kernelsize` is named, not silently dropped), then
// checked as planModel checks any spec. Errors name the file.
import { readFileSync } from 'fs';
import { CnnSpec, CONV_KEYS, planModel, SPEC_KEYS } from './spec';

/** A spec file that cannot be used: the file, and what is wrong with it. */
export class SpecFileError extends Error {
  constructor(readonly file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = 'SpecFileError';
  }
}

/** The largest spec file read (a spec is a few hundred bytes). */
const MAX_SPEC_BYTES = 1 << 20;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The path of the first key a spec object does not know (`conv[1].kernelsize`), or undefined. */
export function unknownSpecKey(spec: unknown): string | undefined {
  if (!isObject(spec)) return undefined;
  for (const key of Object.keys(spec)) if (!SPEC_KEYS.includes(key)) return key;
  if (!Array.isArray(spec.conv)) return undefined;
  for (const [i, layer] of spec.conv.entries()) {
    if (!isObject(layer)) continue;
    for (const key of Object.keys(layer)) if (!CONV_KEYS.includes(key)) return `conv[${i}].${key}`;
  }
  return undefined;
}

/**
 * Reads a spec from a JSON file and checks it (unknown keys refused with their path, then every field
 * as planModel checks it). Returns the spec as written (defaults are filled in by whoever builds it).
 * @example const spec = readSpecFile('wide.json'); await trainCnn({ spec });
 */
export function readSpecFile(file: string): CnnSpec {
  let text: string;
  try {
    const bytes = readFileSync(file);
    if (bytes.length > MAX_SPEC_BYTES) throw new Error(`it is ${bytes.length} bytes; a spec file is at most ${MAX_SPEC_BYTES}`);
    text = bytes.toString('utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new SpecFileError(file, e.code === 'ENOENT' ? 'no such spec file' : `cannot be read (${e.message})`);
  }
  let spec: unknown;
  try {
    spec = JSON.parse(text);
  } catch (err) {
    throw new SpecFileError(file, `is not valid JSON (${(err as Error).message})`);
  }
  if (!isObject(spec)) throw new SpecFileError(file, 'does not hold a JSON object (a CnnSpec: { "conv": [...], "dense": [...], ... })');
  const unknown = unknownSpecKey(spec);
  if (unknown !== undefined) {
    const known = unknown.startsWith('conv[') ? CONV_KEYS : SPEC_KEYS;
    throw new SpecFileError(file, `has an unknown key ${unknown} (expected one of ${known.join(', ')})`);
  }
  try {
    planModel(spec);
  } catch (err) {
    throw new SpecFileError(file, `holds an invalid spec (${(err as Error).message})`);
  }
  return spec as unknown as CnnSpec;
}
