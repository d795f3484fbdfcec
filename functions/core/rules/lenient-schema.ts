import { z } from 'zod';
import { closestName } from '../did-you-mean';
import { isPlainObject } from '../message-traits';
import { type Checked, refused } from './refused';
import { type RulesFile, rulesFileSchema } from './schema';

/**
 * The rules file read leniently, for the checks beyond the schema of a file the schema refused (./load.ts): each
 * field, list item and map entry the schema refuses reads as `refused` (./refused.ts) instead of failing the file, and
 * what holds a refused part is kept: a tier whose route is refused still has its require checked. A valid file reads
 * as the schema reads it. Only data that is no map at all fails. Apart from ./schema.ts, which the Lambda bundles'
 * zod must build (test/infra/bundling.test.ts), as that zod carries only the builders the functions call. Built on
 * first use: building it takes 5 to 16 ms, which every command that loads a valid rules file would pay at its start.
 */
export const lenientRulesFileSchema = (): z.ZodType<Checked<RulesFile>> => (lenientSchema ??= lenient(rulesFileSchema) as z.ZodType<Checked<RulesFile>>);
let lenientSchema: z.ZodType<Checked<RulesFile>> | undefined;

/**
 * `schema` with each field of its objects, each item of its lists and each entry of its maps `refused` when the schema
 * refuses it, and without the checks on lists and maps as a whole (at least one item), which the schema reports. A
 * misspelt key is taken for the key its problem suggests, given but refused, so that no check says that one is
 * missing. A signal's kind is kept as the schema has it: a signal whose kind is not known is refused whole.
 * Alternatives other than the signals' kinds (a condition, a route, a list) are one value each.
 */
function lenient(schema: z.core.SomeType, discriminator?: string): z.ZodType {
  const caught = (part: z.core.SomeType) => lenient(part).catch(refused as never);
  if (schema instanceof z.ZodObject) {
    const object = z.object(Object.fromEntries(Object.entries(schema.shape).map(([key, field]) => [key, key === discriminator ? field : caught(field)])));
    // The options of a discriminated union stay objects, as zod needs them: the union takes their misspelt keys.
    return discriminator === undefined ? z.preprocess(misspeltKeysGiven(Object.keys(schema.shape)), object) : object;
  }
  if (schema instanceof z.ZodArray) return z.array(caught(schema.element));
  // Any name: a signal or list named against the rules is told by the schema, and is defined all the same.
  if (schema instanceof z.ZodRecord) return z.record(z.string(), caught(schema.valueType));
  if (schema instanceof z.ZodOptional || schema instanceof z.ZodDefault) return z.clone(schema, { ...schema.def, innerType: lenient(schema.def.innerType) });
  if (schema instanceof z.ZodPipe) return z.clone(schema, { ...schema.def, out: lenient(schema.def.out) });
  if (schema instanceof z.ZodDiscriminatedUnion) {
    const kind = schema.def.discriminator;
    const options = schema.options as z.ZodObject[];
    const keys = [...new Set(options.flatMap((option) => Object.keys(option.shape)))];
    return z.preprocess(misspeltKeysGiven(keys), z.discriminatedUnion(kind, options.map((option) => lenient(option, kind)) as [z.ZodObject, ...z.ZodObject[]]));
  }
  return schema as z.ZodType;
}

/** An object, with each of `keys` that a key of it not among them is closest to (as that key's problem suggests) given as `refused`. */
function misspeltKeysGiven(keys: string[]): (value: unknown) => unknown {
  return (value) => {
    if (!isPlainObject(value)) return value;
    const meant = Object.keys(value).flatMap((key) => (keys.includes(key) ? [] : [closestName(key, keys)]));
    const missing = meant.filter((key): key is string => key !== undefined && !Object.hasOwn(value, key));
    return missing.length === 0 ? value : { ...value, ...Object.fromEntries(missing.map((key) => [key, refused])) };
  };
}
