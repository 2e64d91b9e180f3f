// Issue 16 #1: every reader of a file a user names refuses what is not a regular file (a device such
// as /dev/zero, a FIFO, a folder) and anything larger than it can hold, before reading: no hang, no
// unbounded growth. The readers run in a child process with a time limit (test/fixtures/read-hostile.js)
// so that a reader that blocks on a FIFO fails this test instead of hanging the suite.
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { readRegularFile, UnreadableFileError } from '../src/util/fs-read';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'convscope-file-readers-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const READERS = ['readIdx', 'loadModel', 'loadCheckpoint', 'loadTorchScript', 'exportFilters', 'readEvents', 'buildReport'];

interface Outcome { reader: string; file: string; error: { name: string; message: string } | null; ms: number; rss: number }

function hostileFiles(): [string, string, RegExp][] {
  const folder = path.join(tmp, 'a-folder');
  fs.mkdirSync(folder);
  const fifo = path.join(tmp, 'a-fifo');
  execFileSync('mkfifo', [fifo]);
  // Sparse: 5 GiB on paper, nothing on disk; more than any reader accepts.
  const huge = path.join(tmp, 'huge.pt');
  fs.closeSync(fs.openSync(huge, 'w'));
  fs.truncateSync(huge, 5 * 1024 ** 3);
  const zeroLink = path.join(tmp, 'zero-link.pt');
  fs.symlinkSync('/dev/zero', zeroLink);
  // The folder and the FIFO first: before the fix the FIFO blocks, so /dev/zero is never read.
  return [
    ['a folder', folder, /is a folder, not a regular file/],
    ['a FIFO', fifo, /is a FIFO \(named pipe\), not a regular file/],
    ['/dev/zero', '/dev/zero', /is a character device, not a regular file/],
    ['a link to /dev/zero', zeroLink, /is a character device, not a regular file/],
    ['a 5 GiB file', huge, /is 5368709120 bytes, more than the \d+/],
  ];
}

describe('file readers refuse non-regular files and absurd sizes (#1)', () => {
  const cases = hostileFiles();
  const run = spawnSync(process.execPath, [path.join(__dirname, 'fixtures', 'read-hostile.js'), path.join(tmp, 'out'), ...cases.map(([, file]) => file)], {
    encoding: 'utf8', timeout: 60000,
  });
  const outcomes: Outcome[] = run.stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line));

  test('every reader returned for every file, within the time limit', () => {
    expect(run.stderr).toBe('');
    expect(outcomes.map((o) => `${o.reader} ${o.file}`)).toEqual(cases.flatMap(([, file]) => READERS.map((r) => `${r} ${file}`)));
  });

  test.each(cases)('%s: each reader refuses it at once, naming the file and why', (_what, file, why) => {
    const mine = outcomes.filter((o) => o.file === file);
    expect(mine.map((o) => o.reader)).toEqual(READERS);
    for (const o of mine) {
      // buildReport reads a run folder's files only inside it: a link out (to a folder, to /dev/zero) is left out unread.
      const refusal = o.reader === 'buildReport' ? new RegExp(`${why.source}|config\\.json lies outside .*: not read`) : why;
      expect({ reader: o.reader, message: o.error?.message }).toEqual({ reader: o.reader, message: expect.stringMatching(refusal) });
      // buildReport names the run folder's file, here a link to `file`.
      const named = o.reader === 'buildReport' ? 'config.json' : path.basename(file);
      expect({ reader: o.reader, message: o.error?.message }).toEqual({ reader: o.reader, message: expect.stringContaining(named) });
      expect(o.ms).toBeLessThan(2000);
      expect(o.rss).toBeLessThan(1024 ** 3);
    }
  });
});

describe('readRegularFile', () => {
  test('reads a regular file exactly, and says "missing" for a file that does not exist', () => {
    const file = path.join(tmp, 'small.bin');
    fs.writeFileSync(file, Buffer.from([1, 2, 3]));
    expect([...readRegularFile(file, 3)]).toEqual([1, 2, 3]);
    const tooSmall = (() => { try { readRegularFile(file, 2); } catch (err) { return err as UnreadableFileError; } })();
    expect(tooSmall).toMatchObject({ reason: 'too-large', message: `${file}: is 3 bytes, more than the 2 it may have` });
    const missing = (() => { try { readRegularFile(path.join(tmp, 'none'), 10); } catch (err) { return err as UnreadableFileError; } })();
    expect(missing).toMatchObject({ reason: 'missing', name: 'UnreadableFileError' });
  });
});
