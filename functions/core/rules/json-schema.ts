import { z } from 'zod';
import { rulesFileSchema, signalName, signalVariants } from './schema';

/**
 * The JSON Schema of the rules file, for editors (`pql-radar rules schema`). Signals are listed without `kind`. Apart
 * from the schema itself so that no Lambda bundle carries zod's JSON Schema generator.
 */
export function rulesJsonSchema(): Record<string, unknown> {
  const editorSignal = z.union(signalVariants.map((variant) => (variant as z.ZodObject<z.ZodRawShape>).omit({ kind: true })));
  const editorFile = rulesFileSchema.extend({ signals: z.record(signalName, editorSignal) });
  return z.toJSONSchema(editorFile, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
}
