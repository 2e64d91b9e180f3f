// The table printed after training: one row per epoch, then the run folder and what is in it.
import type { TrainResult } from '../train/train-cnn';

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
  if (result.runDir) lines.push(`run folder: ${result.runDir} (config.json, history.json, model.pt, conv1-filters.png, filters.gif, curves.png, events.out.tfevents.*)`);
  return lines.join('\n');
}
