import {
  CreateSecretCommand,
  DescribeSecretCommand,
  GetSecretValueCommand,
  ResourceNotFoundException,
  type SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import type { CloudFormationCustomResourceDeleteEvent } from 'aws-lambda';
import { beforeEach, describe, expect, it } from 'vitest';
import { DynamoDbDestinationRegistry, type DestinationRecord } from '../../functions/adapters/dynamodb/destination-registry';
import { DynamoDbWriteKeyStore } from '../../functions/adapters/dynamodb/write-key-store';
import { bootstrap, bootstrapWriteKeys, handler, resourceProperties, SecretsManagerSecretStore, type SecretStore } from '../../functions/bootstrap/handler';
import { parseWriteKey, secretMatches } from '../../functions/core/write-key';
import { freshTable } from '../support/dynamodb';
import { lambdaContext } from '../support/lambda-context';

const prefix = 'pql-radar/write-key/';

/** Secrets Manager as far as the bootstrap uses it, in memory; `failCreates` makes the next creates fail. */
class InMemorySecrets implements SecretStore {
  readonly values = new Map<string, string>();
  readonly descriptions = new Map<string, string>();
  failCreates = 0;

  async exists(name: string) {
    return this.values.has(name);
  }

  async value(name: string) {
    const value = this.values.get(name);
    if (value === undefined) throw new Error(`ResourceNotFoundException: ${name}`);
    return value;
  }

  async create(name: string, value: string, description: string) {
    if (this.failCreates > 0) {
      this.failCreates--;
      throw new Error('Secrets Manager is unavailable');
    }
    if (this.values.has(name)) throw new Error(`ResourceExistsException: ${name}`);
    this.values.set(name, value);
    this.descriptions.set(name, description);
  }
}

let keys: DynamoDbWriteKeyStore;
let secrets: InMemorySecrets;
let registry: DynamoDbDestinationRegistry;
let table: string;

beforeEach(async () => {
  const { client, tableName } = await freshTable();
  keys = new DynamoDbWriteKeyStore(client, tableName);
  secrets = new InMemorySecrets();
  registry = new DynamoDbDestinationRegistry(client, tableName);
  table = tableName;
});

const run = (workspaces: string[]) => bootstrapWriteKeys({ workspaces, secretNamePrefix: prefix, keys, secrets });

/** The workspace a stored key authenticates for, as ingest checks it; undefined when it does not. */
async function authenticate(key: string) {
  const parsed = parseWriteKey(key);
  if (!parsed) return undefined;
  const record = await keys.find(parsed.keyId);
  return record && !record.revokedAt && secretMatches(parsed.secret, record) ? record.workspace : undefined;
}

describe('bootstrapWriteKeys against DynamoDB Local', () => {
  it('creates one key per workspace, each in its own secret, that authenticates for that workspace only', async () => {
    expect(await run(['acme', 'beta'])).toEqual({ created: ['acme', 'beta'], existing: [], registered: [] });

    expect([...secrets.values.keys()].sort()).toEqual([`${prefix}acme`, `${prefix}beta`]);
    expect(await authenticate(secrets.values.get(`${prefix}acme`)!)).toBe('acme');
    expect(await authenticate(secrets.values.get(`${prefix}beta`)!)).toBe('beta');
    const records = await keys.list();
    expect(records.map((record) => record.workspace).sort()).toEqual(['acme', 'beta']);

    // The description names the key id (for `keys revoke`), never the key.
    const acmeKey = secrets.values.get(`${prefix}acme`)!;
    const acmeRecord = records.find((record) => record.workspace === 'acme')!;
    expect(secrets.descriptions.get(`${prefix}acme`)).toContain(acmeRecord.keyId);
    expect(secrets.descriptions.get(`${prefix}acme`)).not.toContain(parseWriteKey(acmeKey)!.secret);
    // Only the hash is stored.
    expect(JSON.stringify(records)).not.toContain(parseWriteKey(acmeKey)!.secret);
  });

  it('creates nothing on a second run: a redeploy never rotates keys', async () => {
    await run(['acme', 'beta']);
    const before = new Map(secrets.values);
    const recordsBefore = await keys.list();

    expect(await run(['acme', 'beta'])).toEqual({ created: [], existing: ['acme', 'beta'], registered: [] });
    expect(secrets.values).toEqual(before);
    expect(await keys.list()).toEqual(recordsBefore);
    expect(await authenticate(secrets.values.get(`${prefix}acme`)!)).toBe('acme');
  });

  it('sets the browser origins the config names, leaving other workspaces their own, and keeps them out of the key list', async () => {
    await keys.setAllowedOrigins('beta', ['https://beta.example']);
    await bootstrapWriteKeys({ workspaces: ['acme', 'beta'], allowedOrigins: { acme: ['https://app.acme.com', '*'] }, secretNamePrefix: prefix, keys, secrets });
    expect(await keys.allowedOrigins()).toEqual(new Map([['acme', ['*', 'https://app.acme.com']], ['beta', ['https://beta.example']]]));
    expect((await keys.list()).map((record) => record.workspace).sort()).toEqual(['acme', 'beta']);

    await bootstrapWriteKeys({ workspaces: ['acme', 'beta'], allowedOrigins: { acme: [] }, secretNamePrefix: prefix, keys, secrets });
    expect(await keys.allowedOrigins()).toEqual(new Map([['beta', ['https://beta.example']]]));
  });

  it('creates a key only for a workspace added later', async () => {
    await run(['acme']);
    const acmeKey = secrets.values.get(`${prefix}acme`);
    expect(await run(['acme', 'gamma'])).toEqual({ created: ['gamma'], existing: ['acme'], registered: [] });
    expect(secrets.values.get(`${prefix}acme`)).toBe(acmeKey);
    expect(await authenticate(secrets.values.get(`${prefix}gamma`)!)).toBe('gamma');
    expect(await keys.list()).toHaveLength(2);
  });

  it('registers the key of an existing secret in a table that does not know it: a deploy after cdk destroy, or a retried first deploy', async () => {
    await run(['acme', 'beta']);
    const acmeKey = secrets.values.get(`${prefix}acme`)!;
    // The stack's next table, beside the secrets the last one left.
    const { client, tableName } = await freshTable();
    keys = new DynamoDbWriteKeyStore(client, tableName);
    expect(await authenticate(acmeKey)).toBeUndefined();

    expect(await run(['acme', 'beta'])).toEqual({ created: [], existing: ['acme', 'beta'], registered: ['acme', 'beta'] });
    expect(secrets.values.get(`${prefix}acme`)).toBe(acmeKey);
    expect(await authenticate(acmeKey)).toBe('acme');
    expect(await authenticate(secrets.values.get(`${prefix}beta`)!)).toBe('beta');
    // Once registered, a deploy leaves it.
    expect(await run(['acme', 'beta'])).toEqual({ created: [], existing: ['acme', 'beta'], registered: [] });
    expect(await keys.list()).toHaveLength(2);
  });

  it('leaves a key the table knows as it is: a revoked one stays revoked', async () => {
    await run(['acme']);
    const acmeKey = secrets.values.get(`${prefix}acme`)!;
    await keys.revoke(parseWriteKey(acmeKey)!.keyId);
    expect(await run(['acme'])).toEqual({ created: [], existing: ['acme'], registered: [] });
    expect(await authenticate(acmeKey)).toBeUndefined();
  });

  it('refuses a secret that holds no key, or another workspace\'s, naming the secret and never its value', async () => {
    secrets.values.set(`${prefix}acme`, 'short value');
    const notAKey = await run(['acme']).catch((error: Error) => error.message);
    expect(notAKey).toMatch(`the secret ${prefix}acme does not hold a write key`);
    expect(notAKey).not.toContain('short value');

    await run(['beta']);
    secrets.values.set(`${prefix}acme`, secrets.values.get(`${prefix}beta`)!);
    await expect(run(['acme'])).rejects.toThrow(new RegExp(`the secret ${prefix}acme holds the key \\w+ of workspace beta, not of acme`));
    expect((await keys.list()).map((record) => record.workspace)).toEqual(['beta']);
  });

  it('after a failure between table and secret, leaves only an unknown key behind and recovers on the next run', async () => {
    secrets.failCreates = 1;
    await expect(run(['acme'])).rejects.toThrow('Secrets Manager is unavailable');
    expect(secrets.values.size).toBe(0);
    expect(await keys.list()).toHaveLength(1);

    expect(await run(['acme'])).toEqual({ created: ['acme'], existing: [], registered: [] });
    expect(await authenticate(secrets.values.get(`${prefix}acme`)!)).toBe('acme');
    expect(await keys.list()).toHaveLength(2);
  });
});

describe('destinations against DynamoDB Local', () => {
  const slack: DestinationRecord = {
    id: 'sales-slack-1',
    kind: 'slack',
    route: 'sales',
    transport: 'sqs',
    ruleArn: 'arn:aws:events:eu-west-1:123456789012:rule/PqlRadar-leads/PqlRadar-LeadFanoutsalesSlack1Rule-ABC',
    eventBusName: 'PqlRadar-leads',
    archiveArn: 'arn:aws:events:eu-west-1:123456789012:archive/LeadFanoutBusArchive-XYZ',
    queueUrl: 'https://sqs.eu-west-1.amazonaws.com/123456789012/PqlRadar-LeadFanoutsalesSlack1Queue-1.fifo',
    queueArn: 'arn:aws:sqs:eu-west-1:123456789012:PqlRadar-LeadFanoutsalesSlack1Queue-1.fifo',
    deadLetterQueueUrl: 'https://sqs.eu-west-1.amazonaws.com/123456789012/PqlRadar-LeadFanoutsalesSlack1DeadLetterQueue-2.fifo',
    deadLetterQueueArn: 'arn:aws:sqs:eu-west-1:123456789012:PqlRadar-LeadFanoutsalesSlack1DeadLetterQueue-2.fifo',
    targetDeadLetterQueueUrl: 'https://sqs.eu-west-1.amazonaws.com/123456789012/PqlRadar-LeadFanoutsalesSlack1TargetDeadLetterQueue-4',
  };
  const email: DestinationRecord = {
    id: 'nurture-email-1',
    kind: 'email',
    route: 'nurture',
    transport: 'sqs',
    ruleArn: 'arn:aws:events:eu-west-1:123456789012:rule/PqlRadar-leads/PqlRadar-LeadFanoutnurtureEmailRule-DEF',
    eventBusName: 'PqlRadar-leads',
    deadLetterQueueUrl: 'https://sqs.eu-west-1.amazonaws.com/123456789012/PqlRadar-LeadFanoutnurtureEmailDeadLetterQueue-3',
  };
  const hubspot: DestinationRecord = { id: 'crm-hubspot-1', kind: 'hubspot', route: '*', transport: 'sqs' };
  const byId = (records: DestinationRecord[]) => [...records].sort((a, b) => a.id.localeCompare(b.id));

  /** A create or update of the custom resource, with the properties as CloudFormation passes them. */
  const deploy = (properties: Record<string, unknown>) =>
    bootstrap(resourceProperties.parse({ TableName: table, SecretNamePrefix: prefix, ...properties }), { keys, secrets, registry });

  it('records the destinations of the template, and a redeploy without one makes it disappear', async () => {
    expect(await deploy({ Workspaces: ['acme'], Destinations: [slack, email, hubspot] })).toEqual({
      created: ['acme'],
      existing: [],
      registered: [],
      destinations: ['sales-slack-1', 'nurture-email-1', 'crm-hubspot-1'],
    });
    expect(byId(await registry.list())).toEqual(byId([slack, email, hubspot]));

    const changedSlack = { ...slack, queueUrl: `${slack.queueUrl!.slice(0, -6)}2.fifo` };
    await deploy({ Workspaces: ['acme'], Destinations: [changedSlack, hubspot] });
    expect(byId(await registry.list())).toEqual(byId([changedSlack, hubspot]));
    // The keys are left as they were.
    expect((await keys.list()).map((record) => record.workspace)).toEqual(['acme']);
  });

  it('records them without write keys, and none when the template leaves them out', async () => {
    await deploy({ Workspaces: [], Destinations: [hubspot] });
    expect(await registry.list()).toEqual([hubspot]);
    expect(secrets.values.size).toBe(0);

    await deploy({});
    expect(await registry.list()).toEqual([]);
    expect(await keys.list()).toEqual([]);
  });

  it('refuses a destination the template could not have written', () => {
    expect(() => resourceProperties.parse({ TableName: table, SecretNamePrefix: prefix, Destinations: [{ ...hubspot, kind: 'fax' }] })).toThrow();
  });
});

describe('SecretsManagerSecretStore', () => {
  function storeAnswering(answer: (command: unknown) => unknown) {
    const sent: unknown[] = [];
    const client = {
      send: async (command: unknown) => {
        sent.push(command);
        return answer(command);
      },
    } as unknown as Pick<SecretsManagerClient, 'send'>;
    return { store: new SecretsManagerSecretStore(client), sent };
  }

  it('reads a secret that DescribeSecret finds as existing, and ResourceNotFoundException as absent', async () => {
    const { store, sent } = storeAnswering((command) => {
      if ((command as DescribeSecretCommand).input.SecretId === `${prefix}acme`) return { Name: `${prefix}acme` };
      throw new ResourceNotFoundException({ message: "Secrets Manager can't find the specified secret.", $metadata: {} });
    });
    expect(await store.exists(`${prefix}acme`)).toBe(true);
    expect(await store.exists(`${prefix}beta`)).toBe(false);
    expect(sent.every((command) => command instanceof DescribeSecretCommand)).toBe(true);
  });

  it('refuses a secret scheduled for deletion, saying how to get out of it', async () => {
    const { store } = storeAnswering(() => ({ Name: `${prefix}acme`, DeletedDate: new Date() }));
    await expect(store.exists(`${prefix}acme`)).rejects.toThrow(/scheduled for deletion: restore it .*restore-secret/);
  });

  it('lets any other error through', async () => {
    const { store } = storeAnswering(() => {
      throw Object.assign(new Error('denied'), { name: 'AccessDeniedException' });
    });
    await expect(store.exists(`${prefix}acme`)).rejects.toThrow('denied');
  });

  it('reads a secret\'s text, and refuses one that holds binary data', async () => {
    const { store, sent } = storeAnswering((command) =>
      (command as GetSecretValueCommand).input.SecretId === `${prefix}acme` ? { SecretString: 'pqr_key' } : { SecretBinary: new Uint8Array([1]) },
    );
    expect(await store.value(`${prefix}acme`)).toBe('pqr_key');
    await expect(store.value(`${prefix}beta`)).rejects.toThrow(`the secret ${prefix}beta holds binary data, not a write key`);
    expect(sent.every((command) => command instanceof GetSecretValueCommand)).toBe(true);
  });

  it('creates the secret with the AWS managed key (no KmsKeyId)', async () => {
    const { store, sent } = storeAnswering(() => ({}));
    await store.create(`${prefix}acme`, 'pqr_key', 'a description');
    expect(sent).toHaveLength(1);
    expect(sent[0]).toBeInstanceOf(CreateSecretCommand);
    expect((sent[0] as CreateSecretCommand).input).toEqual({ Name: `${prefix}acme`, SecretString: 'pqr_key', Description: 'a description' });
  });
});

it('does nothing on Delete: keys and secrets outlive the stack', async () => {
  const event = { RequestType: 'Delete', PhysicalResourceId: prefix } as CloudFormationCustomResourceDeleteEvent;
  // No AWS is reachable here: touching DynamoDB or Secrets Manager would fail the test.
  expect(await handler(event, lambdaContext())).toEqual({ PhysicalResourceId: prefix });
});
