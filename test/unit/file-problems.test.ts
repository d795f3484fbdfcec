import { z } from 'zod';
import { describe, expect, it } from 'vitest';
import { parseYamlFile } from '../../functions/core/yaml-file';

/** The problems of a YAML text against a schema, as `line N: path: message`. */
function problems(text: string, schema: z.ZodType): string[] {
  const parsed = parseYamlFile(text, schema);
  if (parsed.ok) throw new Error('the file was taken');
  return parsed.problems.map((problem) => `line ${problem.line}: ${problem.path}: ${problem.message}`);
}

describe('a bound the file does not keep', () => {
  const schema = z.object({
    shards: z.number().int().min(1).optional(),
    hours: z.number().max(336).optional(),
    weight: z.number().positive().optional(),
    share: z.number().lt(1).optional(),
    name: z.string().min(1).optional(),
    code: z.string().max(3).optional(),
    domains: z.array(z.string()).min(1).optional(),
    pair: z.array(z.string()).min(2).max(2).optional(),
    limited: z.number().max(10, 'at most 10 a minute (the API allows no more)').optional(),
  });

  it("is told in the file's words, with the value given, rather than zod's", () => {
    expect(problems('shards: 0\nhours: 400\nweight: 0\nshare: 1\nname: ""\ncode: abcd\ndomains: []\npair: [a, b, c]\n', schema)).toEqual([
      'line 1: shards: must be at least 1, not 0',
      'line 2: hours: must be at most 336, not 400',
      'line 3: weight: must be more than 0, not 0',
      'line 4: share: must be less than 1, not 1',
      'line 5: name: must not be empty',
      'line 6: code: must be at most 3 characters long',
      'line 7: domains: must list at least one item',
      'line 8: pair: must list at most 2 items',
    ]);
  });

  it("keeps a schema's own message", () => {
    expect(problems('limited: 11\n', schema)).toEqual(['line 1: limited: at most 10 a minute (the API allows no more)']);
  });
});

describe('a value none of the options', () => {
  const schema = z.object({ level: z.enum(['user', 'account']).optional(), version: z.literal(1).optional(), kind: z.enum(['a', 'b'], { error: 'a or b (the kinds there are)' }).optional() });

  it('is told with the options and the value given, and the option meant when it looks misspelt', () => {
    expect(problems('level: acount\nversion: 2\n', schema)).toEqual(['line 1: level: must be one of user, account, not "acount"; did you mean "account"?', 'line 2: version: must be 1, not 2']);
  });

  it("keeps a schema's own message", () => {
    expect(problems('kind: c\n', schema)).toEqual(['line 1: kind: a or b (the kinds there are)']);
  });
});

describe('a text not of its format', () => {
  const schema = z.object({ to: z.array(z.string().email()).optional(), link: z.string().url().optional(), id: z.string().uuid({ error: 'must be the id `keys create` printed' }).optional() });

  it('says the format needed', () => {
    expect(problems('to: [ops]\nlink: nowhere\n', schema)).toEqual(['line 1: to[0]: must be an e-mail address', 'line 2: link: must be a URL']);
  });

  it("keeps a schema's own message", () => {
    expect(problems('id: 42-x\n', schema)).toEqual(['line 1: id: must be the id `keys create` printed']);
  });
});
