import { describe, expect, inject, it } from 'vitest';
import { cli } from '../support/cli';
import { freshTable } from '../support/dynamodb';
import { DynamoDbDestinationRegistry } from '../../functions/adapters/dynamodb/destination-registry';

/** The delivery commands against a table that records no destination (nothing deployed, no `dev --webhook`). */

describe('delivery commands without destinations', () => {
  it('destinations list and dlq list both say that none is recorded', async () => {
    const { tableName } = await freshTable();
    for (const command of [['destinations', 'list'], ['dlq', 'list']]) {
      const run = await cli('--endpoint', inject('dynamoEndpoint'), '--table', tableName, ...command);
      expect(run, command.join(' ')).toEqual({ code: 0, stdout: 'no destinations recorded\n', stderr: '' });
    }
  });

  it('dlq list names a deployed destination recorded without a dead-letter queue rather than leave it out', async () => {
    const { client, tableName } = await freshTable();
    await new DynamoDbDestinationRegistry(client, tableName).add([{ id: 'sales-slack-1', kind: 'slack', route: 'sales', transport: 'sqs' }]);
    const run = await cli('--endpoint', inject('dynamoEndpoint'), '--table', tableName, 'dlq', 'list');
    expect(run).toEqual({ code: 0, stdout: 'sales-slack-1  no dead-letter queue recorded, so none to count\n', stderr: '' });
  });
});
