// npm run export-filters -- --checkpoint <file> [--layer conv1 | --all-layers] [--colormap viridis]
//   [--normalize filter|global] [--out dir]
import { Command } from 'commander';
import { exportFilters } from '../src/viz/export-filters';

const program = new Command()
  .name('export-filters')
  .description('write filter mosaics (PNG), raw weights (.npy) and per-filter statistics (JSON) from a checkpoint or TorchScript file')
  .requiredOption('--checkpoint <file>', 'model.pt from a run, or a TorchScript .pt')
  .option('--layer <name>', 'conv1, conv2, fc1, ...', 'conv1')
  .option('--all-layers', 'every layer with weights')
  .option('--colormap <name>', 'gray, viridis, magma or RdBu', 'RdBu')
  .option('--normalize <how>', 'filter or global', 'global')
  .option('--out <dir>', 'output folder', 'filters-export')
  .showHelpAfterError();

try {
  const flags = program.parse(process.argv).opts();
  const layers = exportFilters({ checkpoint: flags.checkpoint, layer: flags.layer, allLayers: Boolean(flags.allLayers), colormap: flags.colormap, normalize: flags.normalize, out: flags.out });
  for (const l of layers) process.stdout.write(`${l.layer} [${l.shape.join(', ')}] -> ${flags.out}/${l.npy}${l.png ? `, ${flags.out}/${l.png}` : ''}\n`);
  process.stdout.write(`${flags.out}/summary.json\n`);
} catch (err) {
  process.stderr.write(`export-filters: ${(err as Error).message}\n`);
  process.exitCode = 1;
}
