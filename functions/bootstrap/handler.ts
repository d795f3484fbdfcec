import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateSecretCommand, DescribeSecretCommand, GetSecretValueCommand, ResourceNotFoundException, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { CloudFormationCustomResourceEvent, Context } from 'aws-lambda';
import { z } from 'zod';
import { DynamoDbDestinationRegistry, type DestinationRecord } from '../adapters/dynamodb/destination-registry';
import { DynamoDbWriteKeyStore } from '../adapters/dynamodb/write-key-store';
import { makeOrMoveFeedbackSecret } from '../adapters/dynamodb/feedback-store';
import { notifierKinds } from '../core/delivery';
import { parseWriteKey } from '../core/write-key';
import { logger } from '../shared/powertools';
import { longLivedClientOptions } from '../shared/sdk-clients';

/**
 * The deploy bootstrap: a CloudFormation custom resource (lib/write-key-bootstrap.ts) that, on every create and
 * update, gives each configured workspace without one a write key, put in a Secrets Manager secret
 * `<prefix><workspace>` where the user reads it with the AWS CLI (only the key's hash is in the table; the secret is
 * the one place the key is kept), registers the key of a secret that exists in a table that does not know it,
 * records the deployment's destinations in the table for the CLI, and makes the feedback links' signing key.
 */

/** The secrets side of the bootstrap: a port, so the core below runs against DynamoDB Local in tests. */
export interface SecretStore {
  exists(name: string): Promise<boolean>;
  /** The value of a secret that exists. */
  value(name: string): Promise<string>;
  create(name: string, value: string, description: string): Promise<void>;
}

export class SecretsManagerSecretStore implements SecretStore {
  constructor(private readonly client: Pick<SecretsManagerClient, 'send'>) {}

  async exists(name: string): Promise<boolean> {
    try {
      const secret = await this.client.send(new DescribeSecretCommand({ SecretId: name }));
      if (secret.DeletedDate) {
        // Creating it again would fail, and skipping it would leave the workspace without a readable key.
        throw new Error(
          `the secret ${name} is scheduled for deletion: restore it (aws secretsmanager restore-secret --secret-id ${name}) ` +
            'or delete it now (aws secretsmanager delete-secret --force-delete-without-recovery), then deploy again',
        );
      }
      return true;
    } catch (error) {
      if (error instanceof ResourceNotFoundException) return false;
      throw error;
    }
  }

  async value(name: string): Promise<string> {
    const { SecretString } = await this.client.send(new GetSecretValueCommand({ SecretId: name }));
    if (SecretString === undefined) throw new Error(`the secret ${name} holds binary data, not a write key: put the workspace's write key in it as text`);
    return SecretString;
  }

  async create(name: string, value: string, description: string): Promise<void> {
    // No KmsKeyId: the AWS managed key aws/secretsmanager, which any reader with GetSecretValue can use.
    await this.client.send(new CreateSecretCommand({ Name: name, SecretString: value, Description: description }));
  }
}

export interface BootstrapWriteKeysInput {
  workspaces: readonly string[];
  /** Browser origins to set, by workspace; a workspace not named keeps its own. */
  allowedOrigins?: Readonly<Record<string, readonly string[]>>;
  secretNamePrefix: string;
  keys: Pick<DynamoDbWriteKeyStore, 'create' | 'find' | 'setAllowedOrigins'>;
  secrets: SecretStore;
}

/**
 * Creates a key for every workspace whose secret does not exist yet; a workspace with a secret keeps its key, so a
 * redeploy never rotates a key that SDKs already use. The key goes into the table before the secret: a failure in
 * between leaves a key nobody knows (harmless, revocable with `pql-radar keys revoke`), never a secret whose key does
 * not authenticate.
 *
 * A secret outlives its stack's table, as the table outlives the stack: `cdk destroy` and a deploy again, or a first
 * deploy that failed and is retried (CloudFormation retains the table it made and the next attempt makes another), give
 * a new table beside the old secret. Its key is then registered in the new table (`registered`), so the key users read
 * from the secret, and SDKs already send, authenticates. A key the table knows is left as it is, revoked or not.
 */
export async function bootstrapWriteKeys(input: BootstrapWriteKeysInput): Promise<{ created: string[]; existing: string[]; registered: string[] }> {
  const created: string[] = [];
  const existing: string[] = [];
  const registered: string[] = [];
  for (const workspace of input.workspaces) {
    const secretName = `${input.secretNamePrefix}${workspace}`;
    if (await input.secrets.exists(secretName)) {
      existing.push(workspace);
      if (await registerSecretKey(input, workspace, secretName)) registered.push(workspace);
      continue;
    }
    const { key, record } = await input.keys.create(workspace);
    await input.secrets.create(
      secretName,
      key,
      `pql-radar write key ${record.keyId} of workspace ${workspace}. Replace it with "pql-radar keys create" and "keys revoke ${record.keyId}".`,
    );
    created.push(workspace);
  }
  for (const [workspace, origins] of Object.entries(input.allowedOrigins ?? {})) await input.keys.setAllowedOrigins(workspace, origins);
  return { created, existing, registered };
}

/** Registers the key in a workspace's secret when the table has no record of it; true when it did. */
async function registerSecretKey(input: BootstrapWriteKeysInput, workspace: string, secretName: string): Promise<boolean> {
  const key = (await input.secrets.value(secretName)).trim();
  // The errors name the secret, never its value.
  const parsed = parseWriteKey(key);
  if (parsed === undefined) {
    throw new Error(`the secret ${secretName} does not hold a write key: put the workspace's key in it, or delete the secret (aws secretsmanager delete-secret --force-delete-without-recovery) to have a new key made`);
  }
  const record = await input.keys.find(parsed.keyId);
  if (record === undefined) {
    await input.keys.create(workspace, { existingKey: key });
    return true;
  }
  if (record.workspace !== workspace) {
    throw new Error(`the secret ${secretName} holds the key ${record.keyId} of workspace ${record.workspace}, not of ${workspace}: put ${workspace}'s key in it, or delete the secret to have a new key made`);
  }
  return false;
}

const optional = z.string().min(1).optional();

/** A destination as the template passes it (every value a string, as CloudFormation passes them all). */
const destinationRecord = z.object({
  id: z.string().min(1),
  kind: z.enum([...notifierKinds, 'email', 'sqs', 'lambda']),
  route: z.string().min(1),
  transport: z.enum(['sqs', 'table']),
  ruleArn: optional,
  eventBusName: optional,
  archiveArn: optional,
  queueUrl: optional,
  queueArn: optional,
  deadLetterQueueUrl: optional,
  deadLetterQueueArn: optional,
  targetDeadLetterQueueUrl: optional,
}) satisfies z.ZodType<DestinationRecord>;

/** The custom resource's properties, as lib/write-key-bootstrap.ts writes them. */
export const resourceProperties = z.object({
  TableName: z.string().min(1),
  SecretNamePrefix: z.string().min(1),
  Workspaces: z.array(z.string().min(1)).default([]),
  AllowedOrigins: z.record(z.string(), z.array(z.string())).default({}),
  /** Left out by the template when there are none: then no destination stays recorded. */
  Destinations: z.array(destinationRecord).default([]),
});
export type ResourceProperties = z.output<typeof resourceProperties>;

export interface BootstrapPorts {
  keys: BootstrapWriteKeysInput['keys'];
  secrets: SecretStore;
  registry: Pick<DynamoDbDestinationRegistry, 'replace'>;
}

/** What a create or an update does: the write keys (and origins), then the destinations, replaced as a whole. */
export async function bootstrap(properties: ResourceProperties, ports: BootstrapPorts): Promise<{ created: string[]; existing: string[]; registered: string[]; destinations: string[] }> {
  const keys = await bootstrapWriteKeys({
    workspaces: properties.Workspaces,
    allowedOrigins: properties.AllowedOrigins,
    secretNamePrefix: properties.SecretNamePrefix,
    keys: ports.keys,
    secrets: ports.secrets,
  });
  await ports.registry.replace(properties.Destinations);
  return { ...keys, destinations: properties.Destinations.map((destination) => destination.id) };
}

const secrets = new SecretsManagerSecretStore(new SecretsManagerClient(longLivedClientOptions));
const dynamodb = new DynamoDBClient(longLivedClientOptions);

/** The Provider framework's onEvent handler: it answers CloudFormation with what this returns, or with the error. */
export async function handler(event: CloudFormationCustomResourceEvent, context: Context): Promise<{ PhysicalResourceId: string }> {
  logger.addContext(context);
  // Keys and secrets outlive the stack: the table is retained with the keys in it, and the secret is the only
  // copy of a key that production SDKs may still send. Retire a key with `pql-radar keys revoke`. The destination
  // records stay too: when CloudFormation replaces this resource, it deletes the old one after the new one wrote them.
  if (event.RequestType === 'Delete') return { PhysicalResourceId: event.PhysicalResourceId };

  const properties = resourceProperties.parse(event.ResourceProperties);
  const result = await bootstrap(properties, {
    keys: new DynamoDbWriteKeyStore(dynamodb, properties.TableName),
    secrets,
    registry: new DynamoDbDestinationRegistry(dynamodb, properties.TableName),
  });
  // The key the notifiers sign feedback links with (the ingest API checks them), made once per table, or moved out of
  // META where versions before kept it.
  await makeOrMoveFeedbackSecret(dynamodb, properties.TableName);
  // Workspace names and destination ids only: the keys never reach a log.
  logger.info('deployment bootstrapped', { ...result });
  return { PhysicalResourceId: event.RequestType === 'Update' ? event.PhysicalResourceId : properties.SecretNamePrefix };
}
