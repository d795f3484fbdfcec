import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadRulesFile } from '../../functions/local/rules-file';
import { loadRules, loadRulesJson, RulesError, type RulesProblem } from '../../functions/core/rules/load';
import { formatProblem } from '../../functions/core/yaml-file';
import { rulesJsonSchema } from '../../functions/core/rules/json-schema';
import { lenientRulesFileSchema } from '../../functions/core/rules/lenient-schema';
import { rulesFileSchema } from '../../functions/core/rules/schema';

const examplesDir = join(import.meta.dirname, '../../examples');

/** The RulesError `load` throws, or a failure when it loads. */
function rulesErrorOf(load: () => unknown): RulesError {
  try {
    load();
  } catch (error) {
    expect(error).toBeInstanceOf(RulesError);
    return error as RulesError;
  }
  throw new Error('expected the rules to be rejected');
}

/** The problems loadRules reports for a text, or a failure when it loads. */
const problemsOf = (text: string): RulesProblem[] => rulesErrorOf(() => loadRules(text, 'test.rules.yaml')).problems;

/** Problems in the order of the file, as rules check prints them ("line N: ..."). */
const byLine = (a: string, b: string) => Number(a.match(/^line (\d+)/)![1]) - Number(b.match(/^line (\d+)/)![1]);

/** A small valid file the cases below break one way at a time. Line numbers in the cases count from its first line. */
const tiers = `tiers:
  - name: hot
    min_score: 10
    route: sales
`;

describe('loadRules: a wrong rules file fails with the path, the line and the reason', () => {
  it.each<{ name: string; text: string; path: string; line?: number; message: string | RegExp }>([
    {
      name: 'unknown key next to a value',
      text: `version: 1
signals:
  created:
    event: Dashboard Created
    pointz: 3
${tiers}`,
      path: 'signals.created.pointz',
      line: 5,
      message: 'unknown key "pointz"; did you mean "points"?',
    },
    {
      name: 'unknown key holding a nested map is reported on the key, not on its first child',
      text: `version: 1
signals:
  created:
    event: Dashboard Created
    wher:
      plan: pro
${tiers}`,
      path: 'signals.created.wher',
      line: 5,
      message: 'unknown key "wher"; did you mean "where"?',
    },
    {
      name: 'unknown top-level key',
      text: `version: 1
signals:
  created: { event: Dashboard Created }
colour: blue
${tiers}`,
      path: 'colour',
      line: 4,
      message: 'unknown key "colour"',
    },
    {
      name: 'a signal with neither event nor any other defining key',
      text: `version: 1
signals:
  created:
    window: 7d
    points: 5
${tiers}`,
      path: 'signals.created',
      line: 3,
      message: /a signal needs one of these keys: event, events, inactive_for/,
    },
    {
      name: 'both event and events',
      text: `version: 1
signals:
  created:
    event: Dashboard Created
    events: [Dashboard Shared]
${tiers}`,
      path: 'signals.created.event',
      line: 4,
      message: 'give either event or events',
    },
    {
      name: 'both window and since_signup',
      text: `version: 1
signals:
  created:
    event: Dashboard Created
    window: 7d
    since_signup: 7d
${tiers}`,
      path: 'signals.created.since_signup',
      line: 6,
      message: 'give either window or since_signup, not both',
    },
    {
      name: 'two thresholds',
      text: `version: 1
signals:
  created:
    event: Dashboard Created
    at_least: 2
    at_most: 5
${tiers}`,
      path: 'signals.created.at_most',
      line: 6,
      message: 'give one threshold, not at_least and at_most',
    },
    {
      name: 'a distinct threshold past the values a distinct count keeps',
      text: `version: 1
signals:
  viewed:
    event: Item Viewed
    distinct: item
    at_least: 201
${tiers}`,
      path: 'signals.viewed.at_least',
      line: 6,
      message: 'a distinct count stops at 200 values, so at_least: 201 could never be met: give at most 200',
    },
    {
      name: 'a distinct upper bound a count past the kept values would also meet',
      text: `version: 1
signals:
  viewed:
    event: Item Viewed
    distinct: item
    at_most: 200
${tiers}`,
      path: 'signals.viewed.at_most',
      line: 6,
      message: 'a distinct count stops at 200 values, so at_most: 200 would also match any count past it: give at most 199',
    },
    {
      name: 'both distinct and sum',
      text: `version: 1
signals:
  exports:
    event: Data Exported
    distinct: format
    sum: rows
${tiers}`,
      path: 'signals.exports.sum',
      line: 6,
      message: 'give either distinct or sum, not both',
    },
    {
      name: 'unknown signal in all',
      text: `version: 1
signals:
  created: { event: Dashboard Created }
  activated:
    all: [created, invited]
${tiers}`,
      path: 'signals.activated.all[1]',
      line: 5,
      message: 'no signal named "invited"',
    },
    {
      name: 'unknown signal in any',
      text: `version: 1
signals:
  created: { event: Dashboard Created }
  intent:
    any:
      - created
      - hit_limit
${tiers}`,
      path: 'signals.intent.any[1]',
      line: 7,
      message: 'no signal named "hit_limit"',
    },
    {
      name: 'unknown signal in not',
      text: `version: 1
signals:
  created: { event: Dashboard Created }
  quiet:
    not: active
${tiers}`,
      path: 'signals.quiet.not',
      line: 5,
      message: 'no signal named "active"',
    },
    {
      name: 'unknown signal in a tier require',
      text: `version: 1
signals:
  created: { event: Dashboard Created }
tiers:
  - name: hot
    require: [created, activated]
    route: sales
`,
      path: 'tiers[0].require[1]',
      line: 6,
      message: 'no signal named "activated"',
    },
    {
      name: 'a reference to a name every object has (constructor) is still unknown',
      text: `version: 1
signals:
  created: { event: Dashboard Created }
tiers:
  - name: hot
    require: [constructor]
    route: sales
`,
      path: 'tiers[0].require[0]',
      line: 6,
      message: 'no signal named "constructor"',
    },
    {
      name: 'a cycle of combinations',
      text: `version: 1
signals:
  a:
    all: [b]
  b:
    any: [c]
  c:
    not: a
${tiers}`,
      path: 'signals.a',
      line: 3,
      message: 'combinations form a cycle: a -> b -> c -> a',
    },
    {
      name: 'a combination that names itself',
      text: `version: 1
signals:
  a:
    all: [a]
${tiers}`,
      path: 'signals.a',
      line: 3,
      message: 'combinations form a cycle: a -> a',
    },
    {
      name: 'an account-only kind required by a user tier',
      text: `version: 1
signals:
  active: { active_users: 7d, at_least: 3 }
tiers:
  - name: hot
    level: user
    require: [active]
    route: sales
`,
      path: 'tiers[0].require[0]',
      line: 7,
      message: '"active" is an account signal, but the tier is for users',
    },
    {
      name: 'a user signal required by an account tier',
      text: `version: 1
signals:
  created: { event: Dashboard Created }
tiers:
  - name: hot
    level: account
    require: [created]
    route: sales
`,
      path: 'tiers[0].require[0]',
      line: 7,
      message: '"created" is a user signal, but the tier is for accounts',
    },
    {
      name: 'a user combination of an account-only kind',
      text: `version: 1
signals:
  active: { active_users: 7d }
  created: { event: Dashboard Created }
  both:
    all: [created, active]
${tiers}`,
      path: 'signals.both.all[1]',
      line: 6,
      message: '"active" is an account signal and cannot be combined into a user signal',
    },
    {
      name: 'members_matching an account signal',
      text: `version: 1
signals:
  active: { active_users: 7d }
  all_active: { members_matching: active, every: true }
${tiers}`,
      path: 'signals.all_active.members_matching',
      line: 4,
      message: '"active" must be a user signal',
    },
    {
      name: 'of: account on an account signal',
      text: `version: 1
signals:
  big:
    trait: employees
    is: { gte: 50 }
    level: account
    of: account
${tiers}`,
      path: 'signals.big.of',
      line: 7,
      message: 'of: account is for user signals; an account signal reads its own traits',
    },
    {
      name: 'a duration in words',
      text: `version: 1
signals:
  created:
    event: Dashboard Created
    window: 7 days
${tiers}`,
      path: 'signals.created.window',
      line: 5,
      message: 'must be a duration such as 7d or 2w (days or weeks)',
    },
    {
      name: 'a duration of zero',
      text: `version: 1
signals:
  idle: { inactive_for: 0d }
${tiers}`,
      path: 'signals.idle.inactive_for',
      line: 3,
      message: 'must be a duration such as 7d or 2w (days or weeks)',
    },
    {
      name: 'a duration in hours',
      text: `version: 1
signals:
  created: { event: Dashboard Created, decay: 12h }
${tiers}`,
      path: 'signals.created.decay',
      line: 3,
      message: 'must be a duration such as 7d or 2w (days or weeks)',
    },
    {
      name: 'best_member_tier naming no tier',
      text: `version: 1
signals:
  best: { best_member_tier: PQL-Z }
${tiers}`,
      path: 'signals.best.best_member_tier',
      line: 3,
      message: 'no tier named "PQL-Z"',
    },
    {
      name: 'version 2',
      text: `version: 2
signals:
  created: { event: Dashboard Created }
${tiers}`,
      path: 'version',
      line: 1,
      message: 'must be 1 (the rules file format version)',
    },
    {
      name: 'no version',
      text: `signals:
  created: { event: Dashboard Created }
${tiers}`,
      path: 'version',
      line: 1,
      message: 'must be 1 (the rules file format version)',
    },
    {
      name: 'a signal name with capitals',
      text: `version: 1
signals:
  Created: { event: Dashboard Created }
${tiers}`,
      path: 'signals.Created',
      line: 3,
      message: 'must be a signal name: lowercase letters, digits and _, starting with a letter',
    },
    {
      name: 'an unknown condition operator',
      text: `version: 1
signals:
  big:
    trait: employees
    is: { greater_than: 50 }
${tiers}`,
      path: 'signals.big.is',
      line: 5,
      message: /must be a value, or an object with one of: equals/,
    },
    {
      name: 'a tier defined twice',
      text: `version: 1
signals:
  created: { event: Dashboard Created }
tiers:
  - { name: hot, route: sales }
  - { name: hot, route: nurture }
`,
      path: 'tiers[1].name',
      line: 6,
      message: 'tier "hot" is defined twice',
    },
    {
      name: 'no tiers',
      text: `version: 1
signals:
  created: { event: Dashboard Created }
tiers: []
`,
      path: 'tiers',
      line: 4,
      message: 'must define at least one tier',
    },
    {
      name: 'no signals',
      text: `version: 1
signals: {}
${tiers}`,
      path: 'signals',
      line: 2,
      message: 'must define at least one signal',
    },
    {
      name: 'an unknown notify transition',
      text: `version: 1
signals:
  created: { event: Dashboard Created }
${tiers}policy:
  notify: [qualified, upgraded]
`,
      path: 'policy.notify[1]',
      line: 9,
      message: /^must be one of qualified, tier_changed, disqualified, converted, not "upgraded"$/,
    },
    {
      name: 'a YAML syntax error',
      text: `version: 1
signals:
  created: event: Dashboard Created
${tiers}`,
      path: '',
      line: 3,
      message: 'Nested mappings are not allowed in compact mappings',
    },
    {
      name: 'a tab used as indentation',
      text: `version: 1
signals:
\tcreated: { event: Dashboard Created }
${tiers}`,
      path: '',
      line: 3,
      message: 'Tabs are not allowed as indentation',
    },
    {
      name: 'a key given twice',
      text: `version: 1
signals:
  created: { event: Dashboard Created }
signals:
  invited: { event: Teammate Invited }
${tiers}`,
      path: 'signals',
      line: 4,
      message: 'the key "signals" is written twice (first on line 2)',
    },
    {
      name: 'a signal given twice, named with its path',
      text: `version: 1
signals:
  a: { event: Dashboard Created }
  a: { event: Teammate Invited }
${tiers}`,
      path: 'signals.a',
      line: 4,
      message: 'the key "a" is written twice (first on line 3)',
    },
    {
      name: 'a key given twice in a list item of JSON',
      text: `{"version": 1, "signals": {"created": {"event": "Dashboard Created"}},
 "tiers": [{"name": "hot", "route": "sales", "name": "warm"}]}`,
      path: 'tiers[0].name',
      line: 2,
      message: 'the key "name" is written twice (first on line 2)',
    },
    {
      name: 'JSON input, with the line of the problem',
      text: `{
  "version": 1,
  "signals": {
    "created": { "event": "Dashboard Created", "window": "7d", "since_signup": "7d" }
  },
  "tiers": [{ "name": "hot", "route": "sales" }]
}`,
      path: 'signals.created.since_signup',
      line: 4,
      message: 'give either window or since_signup, not both',
    },
    {
      name: 'JSON with an unknown key',
      text: `{"version": 1, "signals": {"created": {"event": "Dashboard Created", "widow": "7d"}}, "tiers": [{"name": "hot", "route": "sales"}]}`,
      path: 'signals.created.widow',
      line: 1,
      message: 'unknown key "widow"; did you mean "window"?',
    },
    {
      name: 'a misspelt key, with the closest key of that object',
      text: `version: 1
signals:
  created:
    event: Dashboard Created
    windw: 7d
${tiers}`,
      path: 'signals.created.windw',
      line: 5,
      message: 'unknown key "windw"; did you mean "window"?',
    },
    {
      name: 'a misspelt key of a tier',
      text: `version: 1
signals:
  created: { event: Dashboard Created }
tiers:
  - name: hot
    min_scor: 10
    route: sales
`,
      path: 'tiers[0].min_scor',
      line: 6,
      message: 'unknown key "min_scor"; did you mean "min_score"?',
    },
    {
      name: 'an unknown key close to no key of its object has no suggestion',
      text: `version: 1
signals:
  created: { event: Dashboard Created, colour: blue }
${tiers}`,
      path: 'signals.created.colour',
      line: 3,
      message: 'unknown key "colour"',
    },
    {
      name: "a misspelt signal's defining key",
      text: `version: 1
signals:
  created:
    evnt: Dashboard Created
    window: 7d
${tiers}`,
      path: 'signals.created',
      line: 3,
      message: /^a signal needs one of these keys: event, .*; did you mean "event" for "evnt"\?$/,
    },
    {
      name: 'a misspelt signal in all',
      text: `version: 1
signals:
  created: { event: Dashboard Created }
  invited: { event: Teammate Invited }
  activated:
    all: [created, invtied]
${tiers}`,
      path: 'signals.activated.all[1]',
      line: 6,
      message: 'no signal named "invtied"; did you mean "invited"?',
    },
    {
      name: 'a misspelt signal in members_matching',
      text: `version: 1
signals:
  power_user: { event: Report Run, at_least: 10 }
  team: { members_matching: power_users, at_least: 2 }
${tiers}`,
      path: 'signals.team.members_matching',
      line: 4,
      message: 'no signal named "power_users"; did you mean "power_user"?',
    },
    {
      name: 'a misspelt signal in a tier require',
      text: `version: 1
signals:
  activated: { event: Dashboard Created }
tiers:
  - name: hot
    require: [activted]
    route: sales
`,
      path: 'tiers[0].require[0]',
      line: 6,
      message: 'no signal named "activted"; did you mean "activated"?',
    },
    {
      name: 'a misspelt tier in best_member_tier, whatever its case',
      text: `version: 1
signals:
  best: { best_member_tier: pql-a }
tiers:
  - { name: PQL-A, route: sales }
`,
      path: 'signals.best.best_member_tier',
      line: 3,
      message: 'no tier named "pql-a"; did you mean "PQL-A"?',
    },
    {
      name: 'a misspelt list',
      text: `version: 1
lists:
  free_mail: [gmail.com]
signals:
  work_email: { trait: email, is: { domain: { not_in_list: free_mial } } }
${tiers}`,
      path: 'signals.work_email.is.domain.not_in_list',
      line: 5,
      message: 'no list named "free_mial"; did you mean "free_mail"?',
    },
    {
      name: 'a list in a where, with no lists defined',
      text: `version: 1
signals:
  signed_up: { event: Signed Up, where: { plan: { in_list: paid_plans } } }
${tiers}`,
      path: 'signals.signed_up.where.plan.in_list',
      line: 3,
      message: 'no list named "paid_plans": define it under lists',
    },
    {
      name: 'an invalid regular expression',
      text: `version: 1
signals:
  plan:
    trait: plan
    is: { matches: "^(pro|team" }
${tiers}`,
      path: 'signals.plan.is.matches',
      line: 5,
      message: '"^(pro|team" is not a valid regular expression: Unterminated group',
    },
    {
      name: 'a regular expression with a flag that makes matching stateful',
      text: `version: 1
signals:
  created: { event: Dashboard Created }
${tiers}conversion:
  event: Order Completed
  where: { coupon: { matches: "/^launch/gi" } }
`,
      path: 'conversion.where.coupon.matches',
      line: 10,
      message: '"/^launch/gi" is not a valid regular expression: flags may be i, m, s and u, not "gi"',
    },
    {
      name: 'a domain condition under domain',
      text: `version: 1
signals:
  work_email: { trait: email, is: { domain: { domain: { exists: true } } } }
${tiers}`,
      path: 'signals.work_email.is',
      line: 3,
      message: /^domain takes a condition on the domain: unknown operator "domain": must be a value, or an object with one of: equals, .*not_in_list$/,
    },
    {
      name: 'an operator given the wrong kind of operand',
      text: `version: 1
signals:
  big_order: { event: Order Completed, where: { amount: { gte: "100" } } }
${tiers}`,
      path: 'signals.big_order.where.amount',
      line: 3,
      message: 'gte takes a number, not "100"',
    },
    {
      name: 'a misspelt operator',
      text: `version: 1
signals:
  pro: { trait: plan, is: { equal: pro } }
${tiers}`,
      path: 'signals.pro.is',
      line: 3,
      message: 'unknown operator "equal"; did you mean "equals"?',
    },
    {
      name: 'tiers written as a map',
      text: `version: 1
signals:
  active: { event: Logged In, points: 10 }
tiers:
  PQL-A: { min_score: 10, route: sales }
`,
      path: 'tiers',
      line: 4,
      message: 'must be a list (a "- " line per item, or [a, b]), not a map',
    },
    {
      name: 'an empty file',
      text: '',
      path: '',
      message: 'the file is empty',
    },
    {
      name: 'a count that is not a whole number',
      text: `version: 1
signals:
  active: { event: Logged In, window: 7d, per: day, consecutive: 2.5, points: 10 }
${tiers}`,
      path: 'signals.active.consecutive',
      line: 3,
      message: 'must be a whole number',
    },
    {
      name: 'a list that is neither values nor a file',
      text: `version: 1
lists:
  free_mail: gmail.com
signals:
  created: { event: Dashboard Created }
${tiers}`,
      path: 'lists.free_mail',
      line: 3,
      message: 'must be a list of values, or { file: path } naming a text file with one value a line',
    },
    {
      name: 'distinct on a field of the message, not a property',
      text: `version: 1
signals:
  active_days:
    event: '*'
    distinct: timestamp
    at_least: 3
${tiers}`,
      path: 'signals.active_days.distinct',
      line: 5,
      message: '"timestamp" is a field of the message, not an event property: distinct counts distinct values of an event property; to count active days use `count: days`',
    },
    {
      name: 'distinct on the day',
      text: `version: 1
signals:
  active_days: { event: '*', distinct: day, at_least: 3 }
${tiers}`,
      path: 'signals.active_days.distinct',
      line: 3,
      message: '"day" is the event\'s day, not an event property: distinct counts distinct values of an event property; to count active days use `count: days`',
    },
    {
      name: 'distinct on a nested field of the message',
      text: `version: 1
signals:
  pages: { event: Page Viewed, distinct: context.page.path }
${tiers}`,
      path: 'signals.pages.distinct',
      line: 3,
      message: /^"context.page.path" is a field of the message, not an event property/,
    },
    {
      name: 'sum on a property written with its properties. prefix',
      text: `version: 1
signals:
  rows: { event: Data Exported, sum: properties.rows }
${tiers}`,
      path: 'signals.rows.sum',
      line: 3,
      message: 'sum reads the event\'s properties: write "rows", not "properties.rows"',
    },
    {
      name: 'sum on a field of the message',
      text: `version: 1
signals:
  total: { event: Order Completed, sum: receivedAt }
${tiers}`,
      path: 'signals.total.sum',
      line: 3,
      message: '"receivedAt" is a field of the message, not an event property: sum adds up a numeric event property',
    },
    {
      name: 'JSON with a syntax error',
      text: `{
  "version": 1,
  "signals": { "created": { "event": "Dashboard Created" } ,, },
  "tiers": []
}`,
      path: '',
      line: 3,
      message: /.+/,
    },
  ])('$name', ({ text, path, line, message }) => {
    const problems = problemsOf(text);
    const problem = problems.find((candidate) => candidate.path === path);
    expect(problem, `no problem at "${path}" in ${JSON.stringify(problems)}`).toBeDefined();
    expect(problem!.line).toBe(line);
    if (typeof message === 'string') expect(problem!.message).toBe(message);
    else expect(problem!.message).toMatch(message);
  });

  it('lists every problem at once, and names the source and lines in the error message', () => {
    const text = `version: 1
signals:
  created: { event: Dashboard Created, window: 7x }
  activated: { all: [created, invited] }
tiers:
  - { name: hot, route: sales, require: [missing] }
`;
    const rulesError = rulesErrorOf(() => loadRules(text, 'examples/broken.rules.yaml'));
    expect(rulesError.source).toBe('examples/broken.rules.yaml');
    // The schema's problem and the references of the rest of the file, in one pass: "created", which the schema
    // refused, is defined all the same, so naming it is no problem.
    expect(rulesError.problems.map((problem) => problem.path)).toEqual(['signals.created.window', 'signals.activated.all[1]', 'tiers[0].require[0]']);
    expect(rulesError.message).toContain('examples/broken.rules.yaml: 3 problems');
    expect(rulesError.message).toContain('line 3: signals.created.window: must be a duration');

    const references = problemsOf(text.replace('7x', '7d'));
    expect(references.map(formatProblem)).toEqual([
      'line 4: signals.activated.all[1]: no signal named "invited"',
      'line 6: tiers[0].require[0]: no signal named "missing"',
    ]);
  });

  it('checks the references of the tiers the schema kept at their own places in the file, and takes a refused tier\'s name as defined', () => {
    const problems = problemsOf(`version: 1
signals:
  created: { event: Dashboard Created }
  led: { best_member_tier: hot }
  lost: { best_member_tier: cold }
tiers:
  - { name: hot, route: sales, min_score: lots }
  - { name: warm, route: nurture, level: user, require: [craeted, led] }
`);
    expect(problems.map(formatProblem).sort(byLine)).toEqual([
      'line 5: signals.lost.best_member_tier: no tier named "cold"',
      'line 7: tiers[0].min_score: must be a number, not the text "lots"',
      'line 8: tiers[1].require[0]: no signal named "craeted"; did you mean "created"?',
      'line 8: tiers[1].require[1]: "led" is an account signal, but the tier is for users',
    ]);
  });

  it('checks the rest of the file whatever part the schema refused; a name only a section refused whole could define is no problem', () => {
    const text = `version: 1
signals:
  created: { event: Dashboard Created }
scoring: { fit: [created] }
tiers:
  - { name: hot, route: sales, require: [missing] }
`;
    expect(problemsOf(text).map((problem) => problem.path)).toEqual(['scoring.fit', 'tiers[0].require[0]']);
    // Signals written as a list: which names they define is not known, so the tier's is not told as undefined.
    expect(problemsOf(`version: 1
signals:
  - created: { event: Dashboard Created }
tiers:
  - { name: hot, route: sales, require: [created] }
`).map(formatProblem)).toEqual(['line 2: signals: must be a map (a "key: value" line per entry, or { key: value }), not a list']);
  });

  it('lists the problems of the schema and those beyond it in one run, wherever they are, each part once', () => {
    const problems = problemsOf(`version: 1
timezone: Mars/Olympus
lists:
  free_mail: []
signals:
  created: { event: Dashboard Created, window: 10d, per: week }
  invited: { event: Teammate Invited, points: lots, distinct: timestamp }
  activated: { all: [created, invitd] }
  work_email: { trait: email, is: { domain: { not_in_list: free_mail } } }
  big: { trait: employees, is: { gte: 50 }, level: acount }
  big_team: { members_matching: big, every: yes }
tiers:
  - { name: hot, route: { by: region, map: {}, default: sales }, require: [missing] }
  - { name: warm, route: nurture, level: account, require: [created, big] }
conversion: { event: Order Completed, trait: plan, keep_in_tiers: maybe }
policy: { cooldown: soon }
`);
    // Not told, as they only follow from what is: work_email's list, refused, is defined all the same; big's level is
    // not known, so neither big_team nor the tier warm is told it does not fit.
    expect(problems.map(formatProblem).sort(byLine)).toEqual([
      'line 2: timezone: must be an IANA time zone such as Europe/Berlin or America/New_York',
      'line 4: lists.free_mail: must list at least one item',
      'line 6: signals.created.window: must be a whole number of weeks to split per week (10 days is not)',
      'line 7: signals.invited.points: must be a number, not the text "lots"',
      'line 7: signals.invited.distinct: "timestamp" is a field of the message, not an event property: distinct counts distinct values of an event property; to count active days use `count: days`',
      'line 8: signals.activated.all[1]: no signal named "invitd"; did you mean "invited"?',
      'line 10: signals.big.level: must be one of user, account, not "acount"; did you mean "account"?',
      'line 11: signals.big_team.every: must be true or false, not the text "yes"',
      'line 13: tiers[0].route.map: must map at least one trait value to a route',
      'line 13: tiers[0].require[0]: no signal named "missing"',
      'line 14: tiers[1].require[0]: "created" is a user signal, but the tier is for accounts',
      'line 15: conversion.keep_in_tiers: must be true or false, not the text "maybe"',
      'line 15: conversion: give either event (with optional where) or trait (with is)',
      'line 15: conversion.is: a trait conversion needs is: the value that converts, e.g. { in: [pro, business] }',
      'line 16: policy.cooldown: must be a duration such as 7d or 2w (days or weeks)',
    ]);
  });

  it('checks a tier whose route the schema refused, and counts a misspelt key as given: nothing is told twice or only in the next run', () => {
    const text = `version: 1
signals:
  created: { event: Dashboard Created, per: week, windw: 14d }
tiers:
  - { name: hot, route: { by: region, map: { emea: sales-emea } }, require: [craeted] }
conversion: { evnt: Order Completed, where: { plan: pro } }
`;
    // Not "per splits the window into periods: give window", nor that the conversion needs an event: they are given,
    // misspelt.
    expect(problemsOf(text).map(formatProblem).sort(byLine)).toEqual([
      'line 3: signals.created.windw: unknown key "windw"; did you mean "window"?',
      'line 5: tiers[0].route: a route chosen by a trait needs by (the trait), map ({ trait value: route }) and default (a route)',
      'line 5: tiers[0].require[0]: no signal named "craeted"; did you mean "created"?',
      'line 6: conversion.evnt: unknown key "evnt"; did you mean "event"?',
    ]);
    // Fixed as told, the file holds no other problem.
    const fixed = text.replace('windw', 'window').replace('map: { emea: sales-emea } }', 'map: { emea: sales-emea }, default: sales }').replace('craeted', 'created').replace('evnt', 'event');
    expect(loadRules(fixed).file.tiers).toHaveLength(1);
  });

  it('reads a JSON file the schema refused as it reads YAML: the references of the rest too, without lines', () => {
    const json = JSON.stringify({ version: 1, signals: { created: { event: 'Dashboard Created', window: '7x' }, invited: { event: 'Teammate Invited' } }, tiers: [{ name: 'hot', route: 'sales', require: ['created', 'missing'] }] });
    expect(rulesErrorOf(() => loadRulesJson(json, 'broken.rules.json')).problems).toEqual([
      { path: 'signals.created.window', message: expect.stringContaining('must be a duration') },
      { path: 'tiers[0].require[1]', message: 'no signal named "missing"' },
    ]);
  });

  it('reads JSON as it reads YAML: the same rules give the same ruleset version', () => {
    const yamlText = readFileSync(join(examplesDir, 'activation.rules.yaml'), 'utf8');
    const fromYaml = loadRules(yamlText, 'activation.rules.yaml');
    const fromJson = loadRules(JSON.stringify(parse(yamlText), null, 2), 'activation.rules.json');
    expect(fromJson.version).toBe(fromYaml.version);
    expect(fromJson.file).toEqual(fromYaml.file);
  });

  it('fills the defaults and works out what the engine needs', () => {
    const ruleset = loadRules(`version: 1
signals:
  invited: { event: Teammate Invited, window: 2w, points: 5 }
  early: { event: Dashboard Created, since_signup: 10d }
  idle: { inactive_for: 30d }
  active: { active_users: 7d }
  big: { trait: employees, is: { gte: 50 } }
  both: { all: [invited, early] }
tiers:
  - { name: hot, route: sales }
  - { name: warm, route: nurture }
`);
    expect(ruleset.file.signals['invited']).toMatchObject({ kind: 'event', window: 14, points: 5, level: 'user' });
    expect(ruleset.file.signals['big']).toMatchObject({ kind: 'trait', of: 'self', points: 0 });
    expect(ruleset.file.tiers[0]).toEqual({ name: 'hot', route: 'sales', require: [], level: 'both' });
    expect(ruleset.file.policy).toEqual({ notify: ['qualified', 'tier_changed', 'disqualified', 'converted'] });
    expect(ruleset.eventSignals).toEqual(['invited', 'early']);
    expect(ruleset.maxWindowDays).toBe(30);
    expect(ruleset.maxSinceSignupDays).toBe(10);
    expect(ruleset.order.indexOf('both')).toBeGreaterThan(ruleset.order.indexOf('invited'));
    expect(ruleset.order.indexOf('both')).toBeGreaterThan(ruleset.order.indexOf('early'));
    expect([...ruleset.tierRank]).toEqual([
      ['hot', 0],
      ['warm', 1],
    ]);
  });

  it('accepts distinct on a property named like no message field, nested or not', () => {
    const ruleset = loadRules(`version: 1
signals:
  invitees: { event: Teammate Invited, distinct: invitee.email, at_least: 3 }
  formats: { event: Data Exported, distinct: format }
${tiers}`);
    expect(ruleset.eventSignals).toEqual(['invitees', 'formats']);
  });

  it('prints a misspelt signal and a misspelt key as rules check does: line, path, and the name meant', () => {
    const problems = problemsOf(`version: 1
signals:
  invited: { event: Teammate Invited, windw: 7d }
  activated: { all: [invitd] }
${tiers}`);
    // The misspelt name is told apart from the refused signal's, as when the signal is valid.
    expect(problems.map(formatProblem)).toEqual(['line 3: signals.invited.windw: unknown key "windw"; did you mean "window"?', 'line 4: signals.activated.all[0]: no signal named "invitd"; did you mean "invited"?']);
    expect(problemsOf(`version: 1
signals:
  invited: { event: Teammate Invited, window: 7d }
  activated: { all: [invitd] }
${tiers}`).map(formatProblem)).toEqual(['line 4: signals.activated.all[0]: no signal named "invitd"; did you mean "invited"?']);
  });

  it('changes the ruleset version when the meaning changes, not when comments or layout do', () => {
    const base = `version: 1
signals:
  created: { event: Dashboard Created, points: 5 }
${tiers}`;
    const version = loadRules(base).version;
    expect(loadRules(`# a comment\n${base.replace('{ event: Dashboard Created, points: 5 }', '\n    event: Dashboard Created\n    points: 5')}`).version).toBe(version);
    expect(loadRules(base.replace('points: 5', 'points: 6')).version).not.toBe(version);
  });
});

describe('the example rules files', () => {
  const files = readdirSync(examplesDir).filter((name) => name.endsWith('.rules.yaml'));

  it('are the three the other code names', () => {
    expect(files).toEqual(expect.arrayContaining(['activation.rules.yaml', 'plan-limits.rules.yaml', 'team-accounts.rules.yaml']));
  });

  it.each(files)('%s loads, its list files with it', (name) => {
    const { ruleset } = loadRulesFile(join(examplesDir, name));
    expect(ruleset.file.tiers.length).toBeGreaterThan(0);
    expect(ruleset.eventSignals.length).toBeGreaterThan(0);
  });

  it.each(files)('%s reads leniently, as the checks beyond the schema read a refused file, just as the schema reads it', (name) => {
    const data = parse(readFileSync(join(examplesDir, name), 'utf8'));
    expect(lenientRulesFileSchema().parse(data)).toEqual(rulesFileSchema.parse(data));
  });

  it('activation.rules.yaml expresses the article formula, anti-PQL rules, fit and two routed tiers', () => {
    const { file } = loadRules(readFileSync(join(examplesDir, 'activation.rules.yaml'), 'utf8'));
    expect(file.signals['activated']).toMatchObject({ kind: 'combination', all: ['created_dashboards', 'invited_teammate', 'connected_data_source'] });
    expect(file.signals['created_dashboards']).toMatchObject({ kind: 'event', since_signup: 7, at_least: 2 });
    expect(file.signals['pql_formula']).toMatchObject({ kind: 'combination', all: ['activated', 'key_feature', 'team_intent'] });
    expect(file.signals['inactive_14d']).toMatchObject({ kind: 'inactivity', inactive_for: 14 });
    expect(file.signals['barely_used']).toMatchObject({ kind: 'event', at_most: 5, window: 60 });
    expect(file.signals['company_size']).toMatchObject({ kind: 'trait', of: 'account', is: { gte: 50 } });
    expect(file.signals['target_industry']).toMatchObject({ kind: 'trait', is: { in: expect.any(Array) } });
    expect(file.tiers.map((tier) => [tier.name, tier.route])).toEqual([
      ['PQL-A', 'sales'],
      ['PQL-B', 'nurture'],
    ]);
    expect(file.tiers[0]!.require).toContain('pql_formula');
    expect(file.scoring.cap).toBe(100);
    expect(file.policy.cooldown).toBe(14);
  });
});

describe('rulesJsonSchema', () => {
  const schema = rulesJsonSchema();
  const signalVariants = () => {
    const signals = (schema['properties'] as Record<string, { additionalProperties: { anyOf: { properties: Record<string, unknown> }[] } }>)['signals']!;
    return signals.additionalProperties.anyOf;
  };

  it('is a JSON Schema of the file with every top-level key', () => {
    expect(schema['$schema']).toMatch(/json-schema\.org/);
    expect(Object.keys(schema['properties'] as object)).toEqual(['version', 'name', 'timezone', 'lists', 'signup', 'signals', 'scoring', 'tiers', 'identity', 'conversion', 'policy']);
    expect(schema['additionalProperties']).toBe(false);
    expect(JSON.parse(JSON.stringify(schema))).toEqual(schema);
  });

  it("has the signals' properties, without the internal kind", () => {
    const keys = new Set(signalVariants().flatMap((variant) => Object.keys(variant.properties)));
    for (const key of ['event', 'events', 'where', 'distinct', 'sum', 'window', 'since_signup', 'decay', 'inactive_for', 'signup_older_than', 'trait', 'is', 'of', 'all', 'any', 'not', 'active_users', 'members_matching', 'every', 'best_member_tier', 'at_least', 'at_most', 'exactly', 'points', 'category', 'level']) {
      expect(keys, key).toContain(key);
    }
    expect(keys).not.toContain('kind');
    expect(JSON.stringify(schema)).toContain('since_signup');
  });

  it('describes durations as the strings authors write', () => {
    const event = signalVariants().find((variant) => 'since_signup' in variant.properties)!;
    expect(event.properties['since_signup']).toMatchObject({ type: 'string', pattern: expect.stringContaining('[dw]') });
  });
});
