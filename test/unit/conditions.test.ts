import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { conditionHolds, traitHolds } from '../../functions/core/rules/conditions';
import { evaluate } from '../../functions/core/rules/engine';
import { factsFor } from '../support/facts';
import { loadRules, loadRulesJson, type RulesError, type RulesProblem } from '../../functions/core/rules/load';
import { loadRulesFile } from '../../functions/local/rules-file';

const examples = join(import.meta.dirname, '../../examples');

describe('numeric conditions on numbers sent as strings', () => {
  const cases: [condition: Parameters<typeof conditionHolds>[0], value: unknown, holds: boolean][] = [
    [{ gte: 42 }, '42', true],
    [{ gte: 42 }, '41.99', false],
    [{ gt: 42 }, '42', false],
    [{ gt: 42 }, '42.5', true],
    [{ lt: 0 }, '-3', true],
    [{ lte: 10 }, ' 10 ', true],
    [{ gte: 1 }, 42, true],
    [{ gte: 1 }, '', false],
    [{ gte: 1 }, '42 seats', false],
    [{ gte: 1 }, '0x2A', false],
    [{ gte: 1 }, 'Infinity', false],
    [{ gte: 1 }, '1e3', false],
    [{ gte: 1 }, true, false],
    [{ gte: 1 }, null, false],
    // Equality stays exact: "42" is not 42.
    [{ equals: 42 }, '42', false],
  ];
  for (const [condition, value, holds] of cases) {
    it(`${JSON.stringify(condition)} on ${JSON.stringify(value)}: ${holds}`, () => {
      expect(conditionHolds(condition, value)).toBe(holds);
    });
  }
});

/** A ruleset with one trait signal on `plan` (whose condition is `condition`, as YAML) and the lists `free_mail` and `plans`. */
function traitRules(condition: string, lists = '  free_mail: [gmail.com, Yahoo.com]\n  plans: [pro, business]\n') {
  return loadRules(`version: 1
lists:
${lists}signals:
  fit: { trait: plan, is: ${condition} }
tiers:
  - { name: hot, route: sales }
`);
}

/** Whether the trait signal of `traitRules(condition)` matches a trait value. */
const holdsInRules = (condition: string, value: unknown) => {
  const { signals } = traitRules(condition).file;
  const signal = signals['fit']!;
  return signal.kind === 'trait' && conditionHolds(signal.is, value);
};

describe('a trait not given', () => {
  const cases: [condition: Parameters<typeof traitHolds>[0], value: unknown, holds: boolean][] = [
    // Neither equal nor unequal, in nor out: a negative condition holds for a value given only.
    [{ not_in: ['free', 'trial'] }, undefined, false],
    [{ not_in: ['free', 'trial'] }, null, false],
    [{ not_in: ['free', 'trial'] }, 'pro', true],
    [{ not_in: ['free', 'trial'] }, 'free', false],
    [{ not_equals: 'free' }, undefined, false],
    [{ not_equals: 'free' }, 'team', true],
    [{ in: ['free'] }, undefined, false],
    [{ exists: false }, undefined, true],
    [{ exists: false }, null, true],
    [{ exists: true }, null, false],
    [{ domain: { exists: false } }, undefined, true],
    [{ domain: { not_equals: 'gmail.com' } }, undefined, false],
  ];
  for (const [condition, value, holds] of cases) {
    it(`${JSON.stringify(condition)} on ${JSON.stringify(value)}: ${holds}`, () => expect(traitHolds(condition, value)).toBe(holds));
  }

  it("is no paying customer to a trait signal: the plan-limits example's paying_already does not take 100 points from a user whose plan is not known", () => {
    const rules = loadRules(`version: 1
signals:
  paying_already: { trait: plan, is: { not_in: [free, trial] }, points: -100 }
  company_plan: { trait: plan, of: account, is: { not_equals: free }, points: 10 }
tiers:
  - { name: PQL, min_score: 1, route: sales }
`, 'rules');
    const now = new Date('2024-06-15T12:00:00.000Z');
    const matched = (traits: Record<string, unknown>, accountTraits: Record<string, unknown>[] = []) => {
      const { signals } = evaluate(factsFor([], rules, { id: 'u', traits, accountTraits }), rules, now);
      return Object.keys(signals).filter((name) => signals[name]!.matched);
    };
    expect(matched({})).toEqual([]);
    expect(matched({ plan: null }, [{ name: 'Acme' }])).toEqual([]);
    expect(matched({ plan: 'business' }, [{ plan: 'team' }])).toEqual(['paying_already', 'company_plan']);
  });
});

describe('text conditions', () => {
  const cases: [condition: string, value: unknown, holds: boolean][] = [
    // starts_with and ends_with ignore case, as e-mail addresses and domains do; a list means any.
    ['{ ends_with: "@acme.com" }', 'ann@acme.com', true],
    ['{ ends_with: "@acme.com" }', 'Ann@ACME.com', true],
    ['{ ends_with: "@ACME.COM" }', 'ann@acme.com', true],
    ['{ ends_with: "@acme.com" }', 'ann@acme.com.evil.io', false],
    ['{ ends_with: "@acme.com" }', '@acme.com', true],
    ['{ ends_with: [".edu", ".ac.uk"] }', 'bob@ox.ac.uk', true],
    ['{ ends_with: [".edu", ".ac.uk"] }', 'bob@ox.uk', false],
    ['{ starts_with: enterprise }', 'Enterprise 2024', true],
    ['{ starts_with: enterprise }', 'pre-enterprise', false],
    ['{ starts_with: [pro, team] }', 'team-annual', true],
    // Text conditions hold for text only.
    ['{ starts_with: "4" }', 42, false],
    ['{ ends_with: x }', null, false],
    ['{ ends_with: x }', undefined, false],
    // matches: a regular expression, matching anywhere unless anchored; case-sensitive unless /…/i.
    ['{ matches: "^pro(_annual)?$" }', 'pro_annual', true],
    ['{ matches: "^pro(_annual)?$" }', 'pro_monthly', false],
    ['{ matches: "^pro(_annual)?$" }', 'PRO', false],
    ['{ matches: "/^pro(_annual)?$/i" }', 'PRO', true],
    ['{ matches: "enterprise" }', 'legacy-enterprise-plan', true],
    ['{ matches: "a/b" }', 'xa/by', true],
    ['{ matches: "/a/b/" }', 'a/b', true],
    ['{ matches: "\\\\d+" }', 12, false],
    // Lists compare case-insensitively, text only.
    ['{ in_list: plans }', 'Business', true],
    ['{ in_list: plans }', 'business plus', false],
    ['{ in_list: plans }', undefined, false],
    ['{ not_in_list: plans }', 'free', true],
    ['{ not_in_list: plans }', 'PRO', false],
    ['{ not_in_list: plans }', undefined, false],
    ['{ not_in_list: plans }', 7, false],
    // domain: the part after the last @, lowercased; a value without one matches only domain: { exists: false }.
    ['{ domain: { not_in_list: free_mail } }', 'ann@acme.com', true],
    ['{ domain: { not_in_list: free_mail } }', 'ann@GMAIL.com', false],
    ['{ domain: { not_in_list: free_mail } }', 'ann@yahoo.com', false],
    ['{ domain: { in_list: free_mail } }', 'ann@gmail.com', true],
    ['{ domain: { in_list: free_mail } }', 'ann@gmail.com.acme.io', false],
    ['{ domain: { in_list: free_mail } }', '"a@b"@gmail.com', true],
    ['{ domain: acme.com }', 'ann@Acme.COM', true],
    ['{ domain: { ends_with: ".edu" } }', 'bob@mit.edu', true],
    ['{ domain: { not_in_list: free_mail } }', 'gmail.com', false],
    ['{ domain: { not_in_list: free_mail } }', 'ann@', false],
    ['{ domain: { not_in_list: free_mail } }', undefined, false],
    ['{ domain: { not_equals: gmail.com } }', 'no e-mail', false],
    ['{ domain: { exists: false } }', 'no e-mail', true],
    ['{ domain: { exists: false } }', 42, true],
    ['{ domain: { exists: false } }', 'ann@acme.com', false],
    ['{ domain: { exists: true } }', 'ann@acme.com', true],
  ];
  it.each(cases)('%s on %j: %s', (condition, value, holds) => {
    expect(holdsInRules(condition, value)).toBe(holds);
  });

  it('compiles a regular expression once per condition, not per evaluation', () => {
    const signal = traitRules('{ matches: "^pro" }').file.signals['fit']!;
    const condition = signal.kind === 'trait' ? signal.is : 0;
    const Original = globalThis.RegExp;
    let compiled = 0;
    globalThis.RegExp = class extends Original {
      constructor(...args: ConstructorParameters<typeof RegExp>) {
        super(...args);
        compiled++;
      }
    } as RegExpConstructor;
    try {
      expect(['pro', 'free', 'pro_annual', 'Pro'].map((value) => conditionHolds(condition, value))).toEqual([true, false, true, false]);
    } finally {
      globalThis.RegExp = Original;
    }
    expect(compiled).toBe(1);
  });
});

describe('lists', () => {
  const rulesWithFileList = `version: 1
lists:
  free_mail: { file: lists/free.txt }
signals:
  work_email: { trait: email, is: { domain: { not_in_list: free_mail } }, points: 5 }
tiers:
  - { name: hot, route: sales }
`;
  const listFile = '# free mail\n\ngmail.com\n  GMX.de  \n# web.de\n';
  const read = (files: Record<string, string>) => (path: string) => {
    if (!Object.hasOwn(files, path)) throw new Error(`ENOENT: no such file, open '${path}'`);
    return files[path]!;
  };
  const workEmail = (ruleset: ReturnType<typeof loadRules>, email: string) => {
    const signal = ruleset.file.signals['work_email']!;
    return signal.kind === 'trait' && conditionHolds(signal.is, email);
  };

  it('reads a list file relative to the rules file: one value a line, blank lines and # comments skipped, case ignored', () => {
    const ruleset = loadRules(rulesWithFileList, 'rules.yaml', read({ 'lists/free.txt': listFile }));
    expect(ruleset.file.lists).toEqual({ free_mail: ['gmail.com', 'GMX.de'] });
    expect(workEmail(ruleset, 'ann@gmx.de')).toBe(false);
    expect(workEmail(ruleset, 'ann@Gmail.com')).toBe(false);
    expect(workEmail(ruleset, 'ann@web.de')).toBe(true);
  });

  it('gives a file list the same rules, and version, as the same values inline', () => {
    const fromFile = loadRules(rulesWithFileList, 'rules.yaml', read({ 'lists/free.txt': listFile }));
    const inline = loadRules(rulesWithFileList.replace('{ file: lists/free.txt }', '[gmail.com, GMX.de]'));
    expect(fromFile.version).toBe(inline.version);
  });

  it("changes the ruleset version when a list file's content changes", () => {
    const version = (text: string) => loadRules(rulesWithFileList, 'rules.yaml', read({ 'lists/free.txt': text })).version;
    expect(version(`${listFile}\n# another comment\n`)).toBe(version(listFile));
    expect(version(`${listFile}web.de\n`)).not.toBe(version(listFile));
  });

  it.each<[name: string, files: Record<string, string> | undefined, message: RegExp]>([
    ['a missing file', {}, /^cannot read lists\/free.txt: ENOENT/],
    ['an empty file', { 'lists/free.txt': '# nothing yet\n\n' }, /^lists\/free.txt holds no values/],
    ['no file reader (rules that are not read from disk)', undefined, /^list files are read with the rules file, from disk/],
  ])('reports %s at the list, with its line', (_name, files, message) => {
    let problems: RulesProblem[] = [];
    try {
      loadRules(rulesWithFileList, 'rules.yaml', files && read(files));
    } catch (error) {
      problems = (error as RulesError).problems;
    }
    expect(problems).toEqual([{ path: 'lists.free_mail.file', line: 3, message: expect.stringMatching(message) }]);
  });

  it('is read from disk with the rules file, and the rules as JSON (LoadedRulesFile.json) carry its values', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pql-lists-'));
    try {
      mkdirSync(join(dir, 'lists'));
      writeFileSync(join(dir, 'rules.yaml'), rulesWithFileList);
      writeFileSync(join(dir, 'lists/free.txt'), listFile);
      const loaded = loadRulesFile(join(dir, 'rules.yaml'));
      expect(JSON.parse(loaded.json).lists).toEqual({ free_mail: ['gmail.com', 'GMX.de'] });
      const deployed = loadRulesJson(loaded.json);
      expect(deployed.version).toBe(loaded.ruleset.version);
      expect(workEmail(deployed, 'ann@gmx.de')).toBe(false);
      expect(workEmail(deployed, 'ann@acme.com')).toBe(true);

      writeFileSync(join(dir, 'lists/free.txt'), `${listFile}acme.com\n`);
      const changed = loadRulesFile(join(dir, 'rules.yaml'));
      expect(changed.ruleset.version).not.toBe(loaded.ruleset.version);
      expect(workEmail(changed.ruleset, 'ann@acme.com')).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('ships a list of free mail domains, lowercase, each once', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pql-lists-'));
    try {
      writeFileSync(join(dir, 'rules.yaml'), rulesWithFileList.replace('lists/free.txt', join(examples, 'lists/free-mail-domains.txt')));
      const { ruleset } = loadRulesFile(join(dir, 'rules.yaml'));
      const domains = ruleset.file.lists!['free_mail'] as string[];
      expect(domains.length).toBeGreaterThanOrEqual(40);
      expect(new Set(domains).size).toBe(domains.length);
      for (const domain of domains) expect(domain).toMatch(/^[a-z0-9-]+(\.[a-z0-9-]+)+$/);
      for (const email of ['ann@gmail.com', 'ann@outlook.com', 'ann@web.de', 'ann@proton.me', 'ann@qq.com']) expect(workEmail(ruleset, email), email).toBe(false);
      expect(workEmail(ruleset, 'ann@acme.com')).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
