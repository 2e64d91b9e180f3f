// Writing an experiment's folder: settings.json, results.json and results.md, each atomically.
import * as path from 'path';
import { writeFileAtomic } from '../util/fs-atomic';
import { resultsMarkdown } from './markdown';
import { RESULT_FILES, type ResultsFile } from './results';

/** Writes settings.json, results.json and results.md into the experiment folder (atomically). @example writeResults('experiments/x', results).markdown // 'experiments/x/results.md' */
export function writeResults(outDir: string, results: ResultsFile): { settings: string; results: string; markdown: string } {
  const files = {
    settings: path.join(outDir, RESULT_FILES.settings),
    results: path.join(outDir, RESULT_FILES.results),
    markdown: path.join(outDir, RESULT_FILES.markdown),
  };
  writeFileAtomic(files.settings, JSON.stringify(results.settings, null, 2) + '\n');
  writeFileAtomic(files.results, JSON.stringify(results, null, 2) + '\n');
  writeFileAtomic(files.markdown, resultsMarkdown(results));
  return files;
}
