import { describe, expect, inject, it } from 'vitest';
import { cli } from '../support/cli';
import { freshTable } from '../support/dynamodb';

/** The delivery commands against a table that records no destination (nothing deployed, no `dev --webhook`). */

describe('delivery commands without destinations', () => {
  it('destinations list and dlq list both say that none is recorded', async () => {
    const { tableName } = await freshTable();
    for (const command of [['destinations', 'list'], ['dlq', 'list']]) {
      const run = await cli('--endpoint', inject('dynamoEndpoint'), '--table', tableName, ...command);
      expect(run, command.join(' ')).toEqual({ code: 0, stdout: 'no destinations recorded\n', stderr: '' });
    }
  });
});
