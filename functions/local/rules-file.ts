import { dirname, resolve } from 'node:path';
import { loadRules, loadRulesJson, rulesJsonOf, type Ruleset } from '../core/rules/load';
import { readTextFile } from './readable-file';

/**
 * Rules files read from disk, with the list files they name (relative to the rules file): the one place that reads
 * them, for the CLI, the local runtime and synth (lib/config.ts). The evaluator reads the rules compiled from
 * `ruleset` (lib/evaluator.ts).
 */

/** A rules file read and validated: its path, its rules, and the rules as JSON for the backtest's workers. */
export interface LoadedRulesFile {
  readonly path: string;
  readonly ruleset: Ruleset;
  /**
   * The file's data as JSON, list files inlined, which the backtest's workers load instead of the file, without the
   * list files. Loads into the same rules, checked here.
   */
  readonly json: string;
}

/** Reads and validates a rules file and its list files; throws RulesError listing every problem with its path and line. */
export function loadRulesFile(path: string): LoadedRulesFile {
  const text = readTextFile(path);
  const ruleset = loadRules(text, path, (listPath) => readTextFile(resolve(dirname(path), listPath)));
  const json = rulesJsonOf(text, ruleset);
  // Checked rather than assumed: a YAML value without a JSON form would change the rules on the way (none passes the
  // schema today); the command fails rather than run other rules than the file says.
  let compiled: Ruleset | undefined;
  try {
    compiled = loadRulesJson(json, `${path} as JSON`);
  } catch (error) {
    throw new Error(`${path}: the rules do not survive conversion to JSON:\n${(error as Error).message}`);
  }
  if (compiled.version !== ruleset.version) {
    throw new Error(`${path}: the rules change on conversion to JSON (version ${ruleset.version} becomes ${compiled.version})`);
  }
  return { path, ruleset, json };
}
