import { type FileProblem, type ProblemAt, problemWithoutLine, validateFile } from '../file-problems';
import { parseYamlFile, yamlFileData } from '../yaml-file';
import { checkedRules, type ReadListFile, rulesetOf, rulesIssuePath, RulesError, type Ruleset } from './ruleset';
import { daySizeProblem } from './day-size';
import { lenientRulesFileSchema } from './lenient-schema';
import { rulesFileSchema } from './schema';

export { compiledRulesJson, loadCompiledRules, type ReadListFile, RulesError, type Ruleset, type RulesProblem } from './ruleset';

/**
 * Parses and validates a rules file (YAML or JSON); throws RulesError listing every problem with its path and line.
 * The YAML side of the rules, for the CLI, the local runtime and synth; the deployed evaluator reads the rules its
 * bundle carries, compiled (`compiledRulesJson`), through ./ruleset.ts, without the YAML parser or the schema.
 * `readListFile` reads the list files the rules name: without it, lists must be inline.
 */
export function loadRules(text: string, source = 'rules', readListFile?: ReadListFile): Ruleset {
  const parsed = parseYamlFile(text, rulesFileSchema, (path, document) => rulesIssuePath(path, (at) => document.hasIn(at)));
  if (!parsed.ok) throw new RulesError(source, [...parsed.problems, ...problemsBeyondTheSchema(parsed.refused, readListFile)]);
  return withinDayBound(rulesetOf(parsed.data, parsed.problemAt, source, readListFile), parsed.problemAt, source);
}

/**
 * Parses and validates a rules file written as JSON (problems have paths, no lines); throws RulesError. What checks
 * that `rulesJsonOf`'s JSON loads into the rules it was written from (functions/local/rules-file.ts).
 */
export function loadRulesJson(text: string, source = 'rules'): Ruleset {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new RulesError(source, [{ path: '', message: (error as Error).message }]);
  }
  const validated = validateFile(data, rulesFileSchema, problemWithoutLine, (path) => rulesIssuePath(path, (at) => hasIn(data, at)));
  if (!validated.ok) throw new RulesError(source, [...validated.problems, ...problemsBeyondTheSchema({ data, problemAt: problemWithoutLine })]);
  return withinDayBound(rulesetOf(validated.data, problemWithoutLine, source), problemWithoutLine, source);
}

/**
 * The ruleset, unless a day of it can grow past the bound a state is kept within (./day-size.ts): refused wherever a
 * rules file is read (rules check, dev, backtest, cdk synth), so that no deploy carries it. Checked once the rules are
 * otherwise valid, as it needs them whole. The deployed evaluator loads the rules synth compiled (./ruleset.ts), which
 * synth checked.
 */
function withinDayBound(ruleset: Ruleset, problemAt: ProblemAt, source: string): Ruleset {
  const problem = daySizeProblem(ruleset);
  if (problem !== undefined) throw new RulesError(source, [problemAt(['signals'], problem)]);
  return ruleset;
}

/**
 * What a file the schema refused would still be told once that is fixed, so that one check lists every problem: the
 * file read leniently (lenientRulesFileSchema), each part the schema refused left out of the checks but counting as
 * given, is checked as a valid file is (checkedRules).
 */
function problemsBeyondTheSchema(refused: { data: unknown; problemAt: ProblemAt } | undefined, readListFile?: ReadListFile): FileProblem[] {
  if (refused === undefined) return [];
  const rest = lenientRulesFileSchema().safeParse(refused.data);
  if (!rest.success) return [];
  return checkedRules(rest.data, readListFile).problems.map(({ path, message }) => refused.problemAt(path, message));
}

/** Whether plain data has a value at `path` (own keys only). */
function hasIn(data: unknown, path: readonly PropertyKey[]): boolean {
  let node = data;
  for (const key of path) {
    if (node === null || typeof node !== 'object' || !Object.hasOwn(node, key)) return false;
    node = (node as Record<PropertyKey, unknown>)[key];
  }
  return true;
}

/**
 * The rules file `text`, loaded as `ruleset`, as JSON: the file's own data (not the ruleset's, whose durations are
 * numbers by now) with its list files' values inlined, as `loadRulesJson` reads it: the text the backtest's workers
 * load the rules from (functions/local/rules-file.ts). The evaluator's bundle carries `compiledRulesJson` instead.
 */
export function rulesJsonOf(text: string, ruleset: Ruleset): string {
  const data = yamlFileData(text) as Record<string, unknown>;
  return `${JSON.stringify(ruleset.file.lists !== undefined ? { ...data, lists: ruleset.file.lists } : data, null, 2)}\n`;
}
