// Transpiles test/*.ts to dist/test/*.js the way ts-jest does here (isolatedModules: per file, no type
// check), so that jest can run the tests where neither TypeScript nor ts-jest is installed (the GPU
// machine; see scripts/gpu-pack.sh and jest.gpu.config.js). Needs `npm run build` for dist/src.
// usage: node scripts/compile-tests.js [OUTDIR]   (default dist/test)
'use strict';
const fs = require('fs');
const path = require('path');
const ts = require('typescript');

const root = path.join(__dirname, '..');
const outDir = path.resolve(root, process.argv[2] || 'dist/test');
const config = ts.readConfigFile(path.join(root, 'tsconfig.json'), ts.sys.readFile).config;
const { options } = ts.convertCompilerOptionsFromJson(config.compilerOptions, root);
Object.assign(options, { sourceMap: false, inlineSourceMap: false, declaration: false, isolatedModules: true });

let count = 0;
function walk(rel) {
  for (const entry of fs.readdirSync(path.join(root, 'test', rel), { withFileTypes: true })) {
    const file = path.join(rel, entry.name);
    if (entry.isDirectory()) walk(file);
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) {
      const source = fs.readFileSync(path.join(root, 'test', file), 'utf8');
      const { outputText } = ts.transpileModule(source, { compilerOptions: options, fileName: file });
      const target = path.join(outDir, file.replace(/\.ts$/, '.js'));
      fs.mkdirSync(path.dirname(target), { recursive: true });
      fs.writeFileSync(target, outputText);
      count++;
    } else if (entry.name.endsWith('.js')) {
      // Plain JavaScript helpers the tests start as child processes (test/fixtures, test/leaks).
      const target = path.join(outDir, file);
      fs.mkdirSync(path.dirname(target), { recursive: true });
      fs.copyFileSync(path.join(root, 'test', file), target);
    }
  }
}
walk('.');
console.log(`compile-tests: ${count} files to ${path.relative(root, outDir)}`);
