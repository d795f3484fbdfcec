import { parseYamlFile, yamlFileData } from '../yaml-file';
import { type ReadListFile, rulesetOf, rulesIssuePath, RulesError, type Ruleset } from './ruleset';
import { rulesFileSchema } from './schema';

export { loadRulesJson, type ReadListFile, RulesError, type Ruleset, type RulesProblem, signalLevel } from './ruleset';

/**
 * Parses and validates a rules file (YAML or JSON); throws RulesError listing every problem with its path and line.
 * The YAML side of the rules, for the CLI, the local runtime and synth; the deployed evaluator reads the JSON its
 * bundle carries through ./ruleset.ts, without the YAML parser. `readListFile` reads the list files the rules name:
 * without it, lists must be inline.
 */
export function loadRules(text: string, source = 'rules', readListFile?: ReadListFile): Ruleset {
  const parsed = parseYamlFile(text, rulesFileSchema, (path, document) => rulesIssuePath(path, (at) => document.hasIn(at)));
  if (!parsed.ok) throw new RulesError(source, parsed.problems);
  return rulesetOf(parsed.data, parsed.problemAt, source, readListFile);
}

/**
 * The rules file `text`, loaded as `ruleset`, as the JSON the evaluator's bundle carries: the file's own data (not the
 * ruleset's, whose durations are numbers by now) with its list files' values inlined, as `loadRulesJson` reads it.
 */
export function rulesJsonOf(text: string, ruleset: Ruleset): string {
  const data = yamlFileData(text) as Record<string, unknown>;
  return `${JSON.stringify(ruleset.file.lists !== undefined ? { ...data, lists: ruleset.file.lists } : data, null, 2)}\n`;
}
