import { describe, expect, it } from 'vitest';
import { ingestConfigFromEnvironment } from '../../functions/ingest/config';
import { integerFrom, requiredText, settingsFromEnvironment, textOr, variablesFromEnvironment } from '../../functions/shared/environment';
import { tableVariables } from '../../functions/shared/settings';
import { tableEnvironmentSchema } from '../../functions/shared/table-environment';

/** The functions' settings from their environment: plain readers, and the table's as zod for rule health. */

const readers = { ...tableVariables(), RUN_INTERVAL_SECONDS: integerFrom(1), EVENT_BUS_NAME: requiredText('the event bus'), ZONE: textOr('UTC') };

describe('variablesFromEnvironment', () => {
  it('reads each variable, with the defaults of the unset ones', () => {
    expect(variablesFromEnvironment(readers, { TABLE_NAME: 'pql-radar', EVENT_BUS_NAME: 'leads', DIRTY_SHARDS: '8', OTHER: 'x' }, 'evaluator')).toEqual({
      TABLE_NAME: 'pql-radar',
      DIRTY_SHARDS: 8,
      RETENTION_DAYS: 400,
      RUN_INTERVAL_SECONDS: undefined,
      EVENT_BUS_NAME: 'leads',
      ZONE: 'UTC',
    });
  });

  it('fails with every wrong variable, by name, in one line', () => {
    expect(() =>
      variablesFromEnvironment(readers, { EVENT_BUS_NAME: '', DIRTY_SHARDS: '2.5', RETENTION_DAYS: '0', RUN_INTERVAL_SECONDS: 'soon', ZONE: '' }, 'evaluator'),
    ).toThrow(
      new Error(
        'evaluator configuration is invalid: TABLE_NAME is required: the DynamoDB table of pql-radar; DIRTY_SHARDS must be a whole number of at least 1, not "2.5"; ' +
          'RETENTION_DAYS must be a whole number of at least 1, not "0"; RUN_INTERVAL_SECONDS must be a whole number of at least 1, not "soon"; ' +
          'EVENT_BUS_NAME is required: the event bus; ZONE must not be empty',
      ),
    );
  });
});

it("reads ingest's settings, 0 seconds of key cache included", () => {
  expect(ingestConfigFromEnvironment({ TABLE_NAME: 'pql-radar', KEY_CACHE_SECONDS: '0', TIME_ZONE: 'Europe/Berlin' })).toEqual({
    tableName: 'pql-radar',
    retentionDays: 400,
    quarantineRetentionDays: 14,
    keyCacheSeconds: 0,
    timeZone: 'Europe/Berlin',
  });
  expect(() => ingestConfigFromEnvironment({ TABLE_NAME: 'pql-radar', KEY_CACHE_SECONDS: '-1' })).toThrow(
    new Error('ingest configuration is invalid: KEY_CACHE_SECONDS must be a whole number of at least 0, not "-1"'),
  );
});

it('gives rule health, which reads its settings with zod, the same table settings and messages', () => {
  const environment = { TABLE_NAME: 'pql-radar', RETENTION_DAYS: '30' };
  expect(settingsFromEnvironment(tableEnvironmentSchema, environment, 'rule health')).toEqual(variablesFromEnvironment(tableVariables(), environment, 'rule health'));
  const wrong = { DIRTY_SHARDS: '-1' };
  const message = 'rule health configuration is invalid: TABLE_NAME is required: the DynamoDB table of pql-radar; DIRTY_SHARDS must be a whole number of at least 1, not "-1"';
  expect(() => settingsFromEnvironment(tableEnvironmentSchema, wrong, 'rule health')).toThrow(new Error(message));
  expect(() => variablesFromEnvironment(tableVariables(), wrong, 'rule health')).toThrow(new Error(message));
});
