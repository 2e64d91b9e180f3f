#!/usr/bin/env node
// The convscope command line. Every failure ends with one clear line and a non-zero exit code.
import { Command } from 'commander';
import { addTrainCommand } from './train-command';
import { addExperimentCommands } from './experiment-commands';
import { addDemoCommand } from './demo-command';
import { addExportCommands } from './export-commands';
import { addTuneCommand } from './tune-command';
import { addExplainCommand } from './explain-command';

export function buildProgram(): Command {
  const program = new Command();
  program.name('convscope').description('train CNNs on libtorch and look inside them').showHelpAfterError();
  program.command('info').description('which libtorch is loaded, CUDA, threads').action(() => {
    const { torchInfo } = require('../index') as typeof import('../index');
    process.stdout.write(JSON.stringify(torchInfo(), null, 2) + '\n');
  });
  addTrainCommand(program);
  addExperimentCommands(program);
  addTuneCommand(program);
  addExportCommands(program);
  addExplainCommand(program);
  addDemoCommand(program);
  return program;
}

if (require.main === module) {
  buildProgram().parseAsync(process.argv).catch((err: Error) => {
    process.stderr.write(`convscope: ${err.message}\n`);
    process.exitCode = err.name === 'AbortError' ? 130 : 1;
  });
}
