// The table printed after training: one row per epoch, then the run folder and what is in it.
import * as fs from 'fs';
import type { TrainResult } from '../train/train-cnn';

/** What the run folder holds, read from the folder: pictures are absent when skipped or without node-canvas. */
function folderContents(dir: string): string {
  const names = fs.readdirSync(dir).filter((n) => !n.startsWith('.')).sort();
  const events = names.filter((n) => n.startsWith('events.out.tfevents.'));
  const rest = names.filter((n) => !n.startsWith('events.out.tfevents.'));
  return [...rest, ...(events.length > 0 ? ['events.out.tfevents.*'] : [])].join(', ');
}

export function formatSummary(result: TrainResult): string {
  const Table = require('cli-table3') as typeof import('cli-table3');
  // Colours only on a terminal: logs and CI get plain text.
  const style = process.stdout.isTTY ? {} : { style: { head: [], border: [] } };
  const table = new Table({ head: ['epoch', 'train loss', 'train acc', 'test loss', 'test acc', 'seconds', 'images/s'], ...style });
  for (const r of result.history) {
    table.push([r.epoch, r.trainLoss.toFixed(4), (100 * r.trainAccuracy).toFixed(2) + '%', r.testLoss.toFixed(4),
      (100 * r.testAccuracy).toFixed(2) + '%', r.seconds.toFixed(1), Math.round(r.imagesPerSecond)]);
  }
  const lines = [table.toString(), `final test accuracy: ${(100 * result.testAccuracy).toFixed(2)}%`];
  const d = result.distributed;
  if (d) {
    lines.push(`data-parallel: ${d.worldSize} ranks, the gradients of ${d.reducedSteps} step(s) averaged by DDP's Reducer (${d.buckets} bucket(s))` +
      (d.syncBatchNorm ? '; batch norms synced over the ranks' : ''));
  }
  if (result.runDir) lines.push(`run folder: ${result.runDir} (${folderContents(result.runDir)})`);
  return lines.join('\n');
}
