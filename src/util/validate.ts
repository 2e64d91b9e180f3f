// Option checks shared by every public function: one message shape,
// `Expected <what> for <name> but received <value>`, TypeError for a wrong type and RangeError for a
// value out of range, so bad input never reaches the addon.

/** Describes a received value for an error message: `"x" of type string`, `NaN of type number`. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'string') return `"${value.length > 60 ? value.slice(0, 57) + '...' : value}" of type string`;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
    return `${String(value)} of type ${typeof value}`;
  }
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  if (ArrayBuffer.isView(value)) return `a ${value.constructor.name}`;
  if (typeof value === 'function') return 'a function';
  return `a value of type ${typeof value}`;
}

export function expected(what: string, name: string, value: unknown): string {
  return `Expected ${what} for ${name} but received ${describe(value)}`;
}

export function checkInteger(value: unknown, name: string, min = -Infinity, max = Infinity): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new TypeError(expected(min >= 1 ? 'positive integer' : 'integer', name, value));
  }
  if (value < min || value > max) {
    const range = max === Infinity ? `integer >= ${min}` : `integer in [${min}, ${max}]`;
    throw new RangeError(expected(range, name, value));
  }
  return value;
}

export function checkPositiveInteger(value: unknown, name: string, max = Infinity): number {
  return checkInteger(value, name, 1, max);
}

export function checkNumber(value: unknown, name: string, min = -Infinity, max = Infinity, options: { exclusiveMin?: boolean; exclusiveMax?: boolean } = {}): number {
  if (typeof value !== 'number') throw new TypeError(expected('a number', name, value));
  if (!Number.isFinite(value)) throw new RangeError(expected('a finite number', name, value));
  const belowMin = options.exclusiveMin ? value <= min : value < min;
  const aboveMax = options.exclusiveMax ? value >= max : value > max;
  if (belowMin || aboveMax) {
    const lo = min === -Infinity ? '(-inf' : `${options.exclusiveMin ? '(' : '['}${min}`;
    const hi = max === Infinity ? 'inf)' : `${max}${options.exclusiveMax ? ')' : ']'}`;
    throw new RangeError(expected(`a number in ${lo}, ${hi}`, name, value));
  }
  return value;
}

export function checkBoolean(value: unknown, name: string): boolean {
  if (typeof value !== 'boolean') throw new TypeError(expected('a boolean', name, value));
  return value;
}

export function checkString(value: unknown, name: string): string {
  if (typeof value !== 'string' || value.length === 0) throw new TypeError(expected('a non-empty string', name, value));
  return value;
}

export function checkOneOf<T extends string>(value: unknown, name: string, choices: readonly T[]): T {
  if (typeof value !== 'string') throw new TypeError(expected(`one of ${choices.join(', ')}`, name, value));
  if (!choices.includes(value as T)) throw new RangeError(expected(`one of ${choices.join(', ')}`, name, value));
  return value as T;
}

export function checkObject(value: unknown, name: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TypeError(expected('an object', name, value));
  }
  return value as Record<string, unknown>;
}

/** Rejects keys the caller did not mean: a typo in an option name is an error, not a silent default. */
export function checkKnownKeys(options: Record<string, unknown>, name: string, known: readonly string[]): void {
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      throw new TypeError(`Unknown option "${key}" in ${name}; expected one of ${known.join(', ')}`);
    }
  }
}

/**
 * Refuses a typed array over a SharedArrayBuffer: the addon shares an ArrayBuffer's memory with
 * libtorch and cannot take a shared one (N-API's bare "Invalid argument"); a copy can be passed.
 * @example checkNotShared(images, 'dataset.train.images');
 */
export function checkNotShared(value: ArrayBufferView, name: string): void {
  if (Object.prototype.toString.call(value.buffer) === '[object SharedArrayBuffer]') {
    throw new TypeError(`${expected('a typed array over an ArrayBuffer', name, value)} over a SharedArrayBuffer; pass a copy (new ${value.constructor.name}(array))`);
  }
}
