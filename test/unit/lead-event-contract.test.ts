import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { leadEventDetailSchema } from '../../functions/core/lead-event';
import { detailJsonSchema } from '../../lib/lead-event-schema';

/**
 * The lead event's detail is a published contract: subscribers validate it with the registry's JSON Schema or the
 * exported zod schema of the release they built against. It may only grow. The fixture is the contract as published;
 * these tests fail on any change to the detail that an event valid under today's code could break a subscriber with.
 */

/** A JSON Schema node as zod writes the detail's (draft 4): no other keyword appears in it. */
interface SchemaNode {
  type?: string | string[];
  enum?: unknown[];
  properties?: Record<string, SchemaNode>;
  required?: string[];
  items?: SchemaNode;
  description?: string;
}

const fixture = join(import.meta.dirname, '../fixtures/lead-event-contract.json');
const published = JSON.parse(readFileSync(fixture, 'utf8')) as SchemaNode;

/** The detail's JSON Schema as the registry gets it, descriptions aside: they are documentation. */
function currentContract(schema: z.ZodType = leadEventDetailSchema): SchemaNode {
  const { $schema: _, ...detail } = detailJsonSchema(schema);
  return JSON.parse(JSON.stringify(detail, (key, value) => (key === 'description' ? undefined : value))) as SchemaNode;
}

const typesOf = (node: SchemaNode) => (node.type === undefined ? undefined : [node.type].flat());
const handledKeywords = new Set(['type', 'enum', 'properties', 'required', 'items', 'description']);

/**
 * What a subscriber of the published contract could meet in an event of the current one and not expect: a field gone
 * or no longer always there, a type or a value it never allowed. Fields added are no break: the published schema does
 * not close its objects (`additionalProperties`), and zod's parse drops what it does not know.
 */
function breaks(before: SchemaNode, now: SchemaNode, path = 'detail'): string[] {
  const found: string[] = [];
  const unknown = [...Object.keys(before), ...Object.keys(now)].filter((keyword) => !handledKeywords.has(keyword));
  if (unknown.length > 0) return [`${path}: uses ${[...new Set(unknown)].join(', ')}, which this check does not compare: extend it`];
  const [typesBefore, typesNow] = [typesOf(before), typesOf(now)];
  if (typesBefore !== undefined) {
    const added = (typesNow ?? ['any type']).filter((type) => !typesBefore.includes(type));
    if (added.length > 0) found.push(`${path}: may now be ${added.join(' or ')}`);
  }
  if (before.enum !== undefined) {
    const added = now.enum === undefined ? ['any value'] : now.enum.filter((value) => !before.enum!.includes(value));
    if (added.length > 0) found.push(`${path}: may now be ${added.map((value) => JSON.stringify(value)).join(' or ')}`);
  }
  for (const name of before.required ?? []) {
    if (before.properties?.[name] !== undefined && now.properties?.[name] !== undefined && !(now.required ?? []).includes(name)) found.push(`${path}.${name}: no longer always present`);
  }
  for (const [name, property] of Object.entries(before.properties ?? {})) {
    const current = now.properties?.[name];
    if (current === undefined) found.push(`${path}.${name}: removed`);
    else found.push(...breaks(property, current, `${path}.${name}`));
  }
  if (before.items !== undefined) {
    if (now.items === undefined) found.push(`${path}[]: its items may now be anything`);
    else found.push(...breaks(before.items, now.items, `${path}[]`));
  }
  return found;
}

describe('the lead event detail, a published contract', () => {
  it('breaks nothing a subscriber of the published contract relies on', () => {
    expect(breaks(published, currentContract())).toEqual([]);
  });

  it('is the contract published (a compatible addition is published by writing it to the fixture: `npx vitest run -u` on this file)', async () => {
    await expect(JSON.stringify(currentContract(), null, 2) + '\n').toMatchFileSnapshot(fixture);
  });

  it('tells a removed, narrowed-away, widened or loosened field from an added one', () => {
    const detail = leadEventDetailSchema;
    // An added field, optional or not, is compatible.
    expect(breaks(published, currentContract(detail.extend({ sentBy: z.string(), region: z.string().optional() })))).toEqual([]);
    expect(breaks(published, currentContract(detail.omit({ summary: true })))).toEqual(['detail.summary: removed']);
    expect(breaks(published, currentContract(detail.extend({ summary: z.string().optional() })))).toEqual(['detail.summary: no longer always present']);
    expect(breaks(published, currentContract(detail.extend({ workspace: z.string().nullable() })))).toEqual(['detail.workspace: may now be null']);
    expect(breaks(published, currentContract(detail.extend({ entity: z.object({ type: z.enum(['user', 'account', 'visitor', 'team']), id: z.string() }) })))).toEqual([
      'detail.entity.type: may now be "team"',
    ]);
    expect(breaks(published, currentContract(detail.extend({ reasons: z.array(z.number()) })))).toEqual(['detail.reasons[]: may now be number']);
    // Narrowing is compatible: an event of the narrower contract is valid under the wider one.
    expect(breaks(published, currentContract(detail.extend({ tier: z.string() })))).toEqual([]);
  });
});
