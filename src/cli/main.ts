#!/usr/bin/env node
// The convscope command line. Every failure ends with one clear line and a non-zero exit code.
import * as fs from 'fs';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { addTrainCommand } from './train-command';
import { addExperimentCommands } from './experiment-commands';
import { addDemoCommand } from './demo-command';
import { addExportCommands } from './export-commands';
import { addTuneCommand } from './tune-command';
import { addExplainCommand } from './explain-command';
import { addProbeCommands } from './probe-commands';

export function buildProgram(): Command {
  const program = new Command();
  // Commander's exits become errors (caught below), set before the commands so that each inherits it:
  // a process.exit() would end the process before a failed write to stdout could be reported.
  program.name('convscope').description('train CNNs on libtorch and look inside them').showHelpAfterError().exitOverride();
  program.command('info').description('which libtorch is loaded, CUDA, threads').action(() => {
    const { torchInfo } = require('../index') as typeof import('../index');
    process.stdout.write(JSON.stringify(torchInfo(), null, 2) + '\n');
  });
  addTrainCommand(program);
  addExperimentCommands(program);
  addTuneCommand(program);
  addExportCommands(program);
  addExplainCommand(program);
  addProbeCommands(program);
  addDemoCommand(program);
  return program;
}

/**
 * Standard output that cannot take what is written (a full disk, a closed pipe) ends the command with
 * one line on stderr and exit code 1: never a stack trace, and never a success code.
 */
function exitOnOutputError(err: Error): void {
  try {
    fs.writeSync(2, `convscope: cannot write to standard output (${err.message})\n`);
  } catch {
    // stderr cannot be written either: the exit code is all that is left.
  }
  process.exit(1);
}

if (require.main === module) {
  process.stdout.on('error', exitOnOutputError);
  buildProgram().parseAsync(process.argv).catch((err: Error) => {
    // Help, or a usage error commander has already printed: its exit code, nothing more to say. (An
    // InvalidArgumentError thrown by an action is not printed yet: it is reported below.)
    if (err instanceof CommanderError && !(err instanceof InvalidArgumentError)) {
      process.exitCode = err.exitCode;
      return;
    }
    process.stderr.write(`convscope: ${err.message}\n`);
    process.exitCode = err.name === 'AbortError' ? 130 : 1;
  });
}
