import { z } from 'zod';
import type { VariableReader } from './environment';
import { environmentNames, tableVariables } from './settings';

/**
 * A plain variable reader as a zod schema: its error becomes the issue of the variable. For the functions that read
 * the rest of their settings with zod (rule health); the others read theirs with ./environment.ts's readers.
 */
function variableSchema<T>(read: VariableReader<T>) {
  return z
    .string()
    .optional()
    .transform((value, context): T => {
      try {
        return read(value);
      } catch (error) {
        context.addIssue({ code: 'custom', message: (error as Error).message });
        return z.NEVER;
      }
    });
}

const table = tableVariables();

/** The table settings (settings.ts `tableVariables`) as a zod object, for rule health to extend. */
export const tableEnvironmentSchema = z.object({
  [environmentNames.tableName]: variableSchema(table[environmentNames.tableName]),
  [environmentNames.dirtyShards]: variableSchema(table[environmentNames.dirtyShards]),
  [environmentNames.retentionDays]: variableSchema(table[environmentNames.retentionDays]),
});
