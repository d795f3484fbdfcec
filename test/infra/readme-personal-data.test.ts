import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../lib/config';
import { defaultBufferObjectDays } from '../../lib/ingest-firehose-buffer';
import { defaultDeliveryLogDays, defaultQuarantineRetentionDays, defaultRetentionDays } from '../../functions/shared/settings';
import { synth } from './synth';

/**
 * The README's table of where a person's data lives and for how long ("How it is stored") is what a team puts in its
 * privacy records: each period it states must be the one the code and the template set, so that it cannot drift.
 */
const readme = readFileSync(join(import.meta.dirname, '../../README.md'), 'utf8');
const tableStart = readme.indexOf('| where | what of a person | kept |');
const rows = readme
  .slice(tableStart, readme.indexOf('\n\n', tableStart))
  .split('\n')
  .slice(2)
  .map((line) => line.split(' | ').map((cell) => cell.replace(/^\| |\s*\|$/g, '')));

/** The "kept" cell of the row whose "where" starts with `where`. */
function kept(where: string): string {
  const row = rows.find(([cell]) => cell!.startsWith(where));
  if (row === undefined) throw new Error(`no row of the README's personal data table starts with "${where}"`);
  return row[2]!;
}

const template = synth().toJSON() as { Resources: Record<string, { Type: string; Properties: Record<string, any> }> };
const resources = (type: string) => Object.values(template.Resources).filter((resource) => resource.Type === type);
/** The table (a TableV2: a global table of one replica, whose backups are the replica's). */
const table = () => {
  const [found, ...others] = resources('AWS::DynamoDB::GlobalTable');
  expect(found).toBeDefined();
  expect(others).toEqual([]);
  return found!.Properties;
};

describe("the README's personal data table", () => {
  it('has a row for each copy, each saying how long it is kept', () => {
    expect(tableStart).toBeGreaterThan(0);
    expect(rows.length).toBeGreaterThanOrEqual(15);
    for (const row of rows) expect(row, row.join(' | ')).toHaveLength(3);
  });

  it("states the table's own periods as the code sets them", () => {
    expect(defaultRetentionDays).toBe(configSchema.parse({ rules: 'x.yaml' }).retentionDays);
    expect(kept('the table: `EVT#`')).toContain(`(${defaultRetentionDays})`);
    expect(kept('the table: rejected messages')).toBe(`${defaultQuarantineRetentionDays} days`);
    expect(kept('the table: delivery log')).toContain(`(${defaultDeliveryLogDays})`);
    expect(table()['TimeToLiveSpecification']).toEqual({ AttributeName: 'expiresAt', Enabled: true });
    expect(kept('the table: `PROFILE`')).toContain('no expiry');
    expect(kept('the table: `STATE`')).toContain('no expiry');
    expect(kept("the table: an account's `MEMBER#`")).toContain('no expiry');
  });

  it("states the backups', the stream's, the archive's, the queues' and the logs' periods as the template sets them", () => {
    // Point-in-time recovery keeps 35 days unless the template says fewer (RecoveryPeriodInDays).
    expect(table()['Replicas'].map((replica: Record<string, unknown>) => replica['PointInTimeRecoverySpecification'])).toEqual([{ PointInTimeRecoveryEnabled: true }]);
    expect(kept("the table's point-in-time recovery")).toBe('35 days of backups');

    expect(table()['StreamSpecification']).toEqual({ StreamViewType: 'KEYS_ONLY' });
    expect(rows.find(([where]) => where === "the table's stream")?.[1]).toMatch(/^keys only/);

    const archives = resources('AWS::Events::Archive');
    expect(archives.map((archive) => archive.Properties['RetentionDays'])).toEqual([90]);
    expect(kept("the lead event bus's archive")).toBe('90 days');

    const queueDays = resources('AWS::SQS::Queue').map((queue) => queue.Properties['MessageRetentionPeriod'] / 86_400);
    expect(queueDays.length).toBeGreaterThan(3);
    expect(Math.max(...queueDays)).toBe(14);
    expect(kept('the delivery queues')).toContain('at most 14 days');

    const logDays = new Set(resources('AWS::Logs::LogGroup').map((group) => group.Properties['RetentionInDays']));
    expect([...logDays]).toEqual([30]);
    expect(kept('CloudWatch Logs')).toContain('one month');
  });

  it("states the ingest buffer's periods as its defaults", () => {
    const config = (ingestBuffer: Record<string, unknown>) => configSchema.parse({ rules: 'x.yaml', ingestBuffer }).ingestBuffer;
    expect(config({ service: 'firehose' })).toMatchObject({ retentionDays: defaultBufferObjectDays });
    expect(config({ service: 'kinesis' })).toMatchObject({ retentionHours: 24 });
    expect(kept('the ingest buffer')).toContain(`\`retentionDays\`, ${defaultBufferObjectDays}`);
    expect(kept('the ingest buffer')).toContain('`retentionHours` (24)');
  });
});
