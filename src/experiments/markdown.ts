// Experiment results as Markdown: tables, the settings line, results.md, percentages.
import { groupFigures, type ResultsFile, type ResultsTable } from './results';

/** Escapes a Markdown table cell. */
function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/**
 * A GitHub-flavoured Markdown table.
 * @example markdownTable({ headers: ['k', 'acc'], rows: [['3', '85.1%']] }) // '| k | acc |\n| --- | --- |\n| 3 | 85.1% |'
 */
export function markdownTable(table: ResultsTable): string {
  const line = (cells: string[]) => `| ${cells.map(cell).join(' | ')} |`;
  return [line(table.headers), line(table.headers.map(() => '---')), ...table.rows.map(line)].join('\n');
}

/** How an optimizer is named in prose. */
function optimizerName(kind: unknown): string {
  return kind === 'sgd' ? 'SGD' : kind === 'adam' ? 'Adam' : String(kind);
}

/** The settings as a short Markdown list. */
function settingsMarkdown(settings: Record<string, unknown>): string {
  const s = settings;
  const machine = (s.machine ?? {}) as Record<string, unknown>;
  return [
    `- dataset: ${s.dataset}, ${s.trainImages} training / ${s.testImages} test images, ${s.epochs} epoch(s), batch ${s.batchSize}, ${optimizerName(s.optimizer)} lr ${s.learningRate}, seed ${s.seed}, ${s.mode} mode on ${s.device}`,
    `- machine: ${machine.cpu} (${machine.cores} cores), ${s.date}`,
  ].join('\n');
}

/** results.md: title, settings, the table, notes and the figures (relative links). @example fs.writeFileSync('results.md', resultsMarkdown(results)) */
export function resultsMarkdown(results: ResultsFile): string {
  const parts = [`# ${results.title}`, '', settingsMarkdown(results.settings), '', markdownTable(results.table), ''];
  for (const note of results.notes) parts.push(note, '');
  for (const group of groupFigures(results.figures)) {
    if (group.title === undefined) {
      const f = group.figures[0];
      parts.push(`![${f.caption}](${f.file})`, '', `*${f.caption}*`, '');
    } else {
      // Side by side: captions as the header row, pictures in the row below.
      parts.push(`**${group.title}**`, '', markdownTable({
        headers: group.figures.map((f) => f.caption),
        rows: [group.figures.map((f) => `![${f.caption}](${f.file})`)],
      }), '');
    }
  }
  return parts.join('\n');
}

/** How every accuracy is shown. @example percent(0.8532) // '85.32%' */
export function percent(fraction: number): string {
  return `${(100 * fraction).toFixed(2)}%`;
}
