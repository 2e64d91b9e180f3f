// Where convscope is installed: the addon, the demo page and the project's Python are found from here.
import * as fs from 'fs';
import * as path from 'path';

/** The package root: the folder holding convscope's package.json, from src/ or dist/src/. */
export function packageRoot(): string {
  let dir = __dirname;
  for (;;) {
    const manifest = path.join(dir, 'package.json');
    if (fs.existsSync(manifest)) {
      try {
        if (JSON.parse(fs.readFileSync(manifest, 'utf8')).name === 'convscope') return dir;
      } catch { /* an unreadable manifest is not ours */ }
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`convscope: cannot find the package root above ${__dirname}`);
    dir = parent;
  }
}
