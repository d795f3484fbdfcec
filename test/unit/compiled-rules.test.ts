import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { conditionHolds } from '../../functions/core/rules/conditions';
import { compiledRulesJson, loadCompiledRules, loadRules, loadRulesJson, RulesError, type Ruleset } from '../../functions/core/rules/load';
import { compiledRulesFormat } from '../../functions/core/rules/ruleset';
import { rulesFileSchema } from '../../functions/core/rules/schema';
import { loadRulesFile } from '../../functions/local/rules-file';

/** The rules the deployed evaluator loads without the schema: compiled at synth (lib/evaluator.ts). */

const examples = join(import.meta.dirname, '../../examples');
const exampleFiles = ['activation.rules.yaml', 'playbook.rules.yaml', 'plan-limits.rules.yaml', 'team-accounts.rules.yaml'];

/** A Ruleset as plain data: its calendar is compared by time zone (its functions are closures of each load). */
const comparable = (ruleset: Ruleset) => ({ ...ruleset, calendar: ruleset.calendar.timeZone });

describe.each(exampleFiles)('%s, compiled', (name) => {
  const loaded = loadRulesFile(join(examples, name));
  const compiled = compiledRulesJson(loaded.ruleset);

  it('loads into the Ruleset the schema gives, from the YAML and from its JSON', () => {
    const fromCompiled = comparable(loadCompiledRules(compiled, 'rules.json'));
    expect(fromCompiled).toEqual(comparable(loaded.ruleset));
    expect(fromCompiled).toEqual(comparable(loadRulesJson(loaded.json, 'rules.json')));
  });

  it('carries its format and its version', () => {
    expect(JSON.parse(compiled)).toEqual({ format: compiledRulesFormat, version: loaded.ruleset.version, rules: loaded.ruleset.file });
  });
});

it('gives list conditions their values, as the schema path does', () => {
  // playbook.rules.yaml reads free_mail from a file; compiled, the values are inline.
  const ruleset = loadCompiledRules(compiledRulesJson(loadRulesFile(join(examples, 'playbook.rules.yaml')).ruleset), 'rules.json');
  const signal = ruleset.file.signals['work_email']!;
  if (signal.kind !== 'trait') throw new Error(`work_email is a ${signal.kind} signal`);
  expect(conditionHolds(signal.is, 'ann@gmail.com')).toBe(false);
  expect(conditionHolds(signal.is, 'ann@acme.com')).toBe(true);
});

describe('refuses compiled rules it cannot trust, naming the field', () => {
  const ruleset = loadRules('version: 1\nsignals:\n  active: { event: Login, window: 7d, points: 10 }\ntiers:\n  - { name: hot, min_score: 10, route: sales }\n');
  const compiled = JSON.parse(compiledRulesJson(ruleset)) as { format: string; version: string; rules: Ruleset['file'] };
  const problemsOf = (data: unknown) => {
    try {
      loadCompiledRules(typeof data === 'string' ? data : JSON.stringify(data), 'rules.json');
    } catch (error) {
      expect(error).toBeInstanceOf(RulesError);
      return (error as RulesError).problems;
    }
    throw new Error('loaded');
  };

  it('loads what was compiled', () => {
    expect(loadCompiledRules(JSON.stringify(compiled), 'rules.json').version).toBe(ruleset.version);
  });

  it('a file compiled in another format, or not compiled at all', () => {
    expect(problemsOf({ ...compiled, format: 'pql-radar-compiled-rules/0' })).toEqual([
      { path: 'format', message: `is "pql-radar-compiled-rules/0", not ${compiledRulesFormat}: compile the rules file again with this pql-radar (cdk synth)` },
    ]);
    // The rules file itself, as JSON, is not compiled rules.
    expect(problemsOf(compiled.rules)).toEqual([{ path: 'format', message: expect.stringMatching(/^is undefined, not /) }]);
    expect(problemsOf([compiled])).toEqual([{ path: '', message: expect.stringContaining(`an object with format ${compiledRulesFormat}`) }]);
    expect(problemsOf({ format: compiledRulesFormat, version: compiled.version })).toEqual([{ path: 'rules', message: 'must be the compiled rules file, an object' }]);
    expect(problemsOf('{"format":')).toEqual([{ path: '', message: expect.any(String) }]);
  });

  it('rules edited after they were compiled', () => {
    const edited = { ...compiled, rules: { ...compiled.rules, tiers: [{ ...compiled.rules.tiers[0]!, min_score: 'high' }] } };
    expect(problemsOf(edited)).toEqual([
      {
        path: 'version',
        message: expect.stringMatching(new RegExp(`^is "${compiled.version}", but the rules hash to "[0-9a-f]{12}": they were changed after they were compiled`)),
      },
    ]);
    expect(problemsOf({ ...compiled, version: undefined })).toEqual([{ path: 'version', message: expect.stringMatching(/^is undefined, but the rules hash to /) }]);
  });

  it('says which file, and why, in its message', () => {
    expect(() => loadCompiledRules(JSON.stringify({ ...compiled, format: 2 }), '/var/task/rules.json')).toThrow(/^\/var\/task\/rules\.json: 1 problem\n {2}format: is 2, not /);
  });
});

it(`pins the schema's output, which compiled rules hold, to ${compiledRulesFormat}`, () => {
  // Failing? The rules file schema's output (functions/core/rules/schema.ts) changed shape: compiled rules of the
  // old shape must not load as the new one. Bump compiledRulesFormat (functions/core/rules/ruleset.ts) and pin the
  // new shape with the new format here. Descriptions are left out: they change no compiled rules.
  const shape = JSON.stringify(z.toJSONSchema(rulesFileSchema, { io: 'output', unrepresentable: 'any' }), (key, value: unknown) => (key === 'description' ? undefined : value));
  expect({ format: compiledRulesFormat, shape: createHash('sha256').update(shape).digest('hex').slice(0, 16) }).toEqual({
    format: 'pql-radar-compiled-rules/1',
    shape: 'ad697b6f830af323',
  });
});
