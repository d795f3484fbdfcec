import { parseYamlFile } from '../yaml-file';
import { rulesetOf, rulesIssuePath, RulesError, type Ruleset } from './ruleset';
import { rulesFileSchema } from './schema';

export { loadRulesJson, RulesError, type Ruleset, type RulesProblem, signalLevel } from './ruleset';

/**
 * Parses and validates a rules file (YAML or JSON); throws RulesError listing every problem with its path and line.
 * The YAML side of the rules, for the CLI, the local runtime and synth; the deployed evaluator reads the JSON its
 * bundle carries through ./ruleset.ts, without the YAML parser.
 */
export function loadRules(text: string, source = 'rules'): Ruleset {
  const parsed = parseYamlFile(text, rulesFileSchema, (path, document) => rulesIssuePath(path, (at) => document.hasIn(at)));
  if (!parsed.ok) throw new RulesError(source, parsed.problems);
  return rulesetOf(parsed.data, parsed.problemAt, source);
}
