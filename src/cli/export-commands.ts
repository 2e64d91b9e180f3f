// The export subcommands: `export` (a model to ONNX, TorchScript or a checkpoint) and `export-filters`
// (mosaics, raw weights and statistics of the filters). Thin wrappers over the library's functions.
import { Command, Option } from 'commander';

export const EXPORT_FORMATS = ['onnx', 'torchscript', 'checkpoint'] as const;

export function addExportCommands(program: Command): void {
  program.command('export')
    .description('write a trained model in a format that runs elsewhere; each takes pixels in [0, 1] and standardises them itself (see README, "Using the model elsewhere")')
    .argument('<checkpoint>', 'a checkpoint (model.pt from a run)')
    .addOption(new Option('--format <name>', 'what to write').choices([...EXPORT_FORMATS]).makeOptionMandatory())
    .requiredOption('--out <file>', 'the file to write (atomically)')
    .action((checkpoint: string, flags: { format: (typeof EXPORT_FORMATS)[number]; out: string }) => {
      const { loadModel } = require('../index') as typeof import('../index');
      const model = loadModel(checkpoint);
      try {
        if (flags.format === 'onnx') model.exportOnnx(flags.out);
        else if (flags.format === 'torchscript') model.exportTorchScript(flags.out);
        else model.save(flags.out);
      } finally {
        model.dispose();
      }
      process.stdout.write(`${flags.out}\n`);
    });

  program.command('export-filters')
    .description('write filter mosaics (PNG), raw weights (.npy) and per-filter statistics (JSON) from a checkpoint or TorchScript file')
    .requiredOption('--checkpoint <file>', 'model.pt from a run, or a TorchScript .pt')
    .option('--layer <name>', 'conv1, conv2, fc1, ...', 'conv1')
    .option('--all-layers', 'every layer with weights')
    .option('--colormap <name>', 'gray, viridis, magma or RdBu', 'RdBu')
    .option('--normalize <how>', 'filter or global', 'global')
    .option('--out <dir>', 'output folder', 'filters-export')
    .action((flags: { checkpoint: string; layer: string; allLayers?: boolean; colormap: string; normalize: string; out: string }) => {
      const { exportFilters } = require('../experiments/export-filters') as typeof import('../experiments/export-filters');
      const layers = exportFilters({
        checkpoint: flags.checkpoint, layer: flags.layer, allLayers: Boolean(flags.allLayers),
        colormap: flags.colormap as never, normalize: flags.normalize as never, out: flags.out,
      });
      for (const l of layers) process.stdout.write(`${l.layer} [${l.shape.join(', ')}] -> ${flags.out}/${l.npy}${l.png ? `, ${flags.out}/${l.png}` : ''}\n`);
      process.stdout.write(`${flags.out}/summary.json\n`);
    });
}
