import { DescribeTableCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DescribeStreamCommand, DynamoDBStreamsClient, GetRecordsCommand, GetShardIteratorCommand, type GetRecordsCommandOutput, type _Record } from '@aws-sdk/client-dynamodb-streams';
import type { WrittenKey } from '../adapters/dynamodb/change-capture';

/** What takes the keys read: change capture into lists, or the evaluator evaluating them at once. */
export interface ChangeSink {
  mark(keys: readonly WrittenKey[]): Promise<unknown>;
}

/**
 * The local runtime's reader of the table's stream, in place of the deployed event source mapping: each drain() reads
 * every shard of DynamoDB Local's stream up to its end and hands the written keys to a sink (the evaluator, or change
 * capture into lists), all at once. A sink that fails leaves the keys unread: the next drain reads them again.
 * Iterators are kept between drains, so each record is read once per process (a restart reads the stream's last 24
 * hours again, which marks entities a second time: harmless).
 */
export class LocalChangeStream {
  #streams: DynamoDBStreamsClient | undefined;
  /** Next iterator by shard id; null once a closed shard is read to its end. */
  readonly #iterators = new Map<string, string | null>();
  #streamArn: string | undefined;
  #draining: Promise<number> = Promise.resolve(0);

  constructor(
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
    private readonly sink: ChangeSink,
  ) {}

  /** Reads what the stream holds now into the sink (the constructor's unless given); calls are serialised. Returns the keys read. */
  drain(sink: ChangeSink = this.sink): Promise<number> {
    const run = this.#draining.catch(() => 0).then(() => this.#drainOnce(sink));
    this.#draining = run;
    return run;
  }

  stop(): void {
    this.#streams?.destroy();
  }

  /** A streams client on the table client's endpoint: DynamoDB Local serves its streams there too. */
  async #streamsClient(): Promise<DynamoDBStreamsClient> {
    if (this.#streams) return this.#streams;
    const endpoint = await this.client.config.endpoint?.();
    if (!endpoint) throw new Error('the local change stream needs a DynamoDB client with an endpoint (DynamoDB Local)');
    const url = `${endpoint.protocol}//${endpoint.hostname}${endpoint.port ? `:${endpoint.port}` : ''}${endpoint.path}`;
    this.#streams = new DynamoDBStreamsClient({ endpoint: url, region: await this.client.config.region(), credentials: await this.client.config.credentials() });
    return this.#streams;
  }

  async #drainOnce(sink: ChangeSink): Promise<number> {
    const streams = await this.#streamsClient();
    this.#streamArn ??= (await this.client.send(new DescribeTableCommand({ TableName: this.tableName }))).Table?.LatestStreamArn;
    if (!this.#streamArn) throw new Error(`table ${this.tableName} has no stream: change capture needs one`);
    const { StreamDescription } = await streams.send(new DescribeStreamCommand({ StreamArn: this.#streamArn }));
    // Every record up to the end of every shard goes to the sink in one call (an entity's records may sit on several
    // pages and shards), and the iterators move on only once it has taken them.
    const keys: WrittenKey[] = [];
    const next = new Map<string, string | null>();
    // Parents first (shards are listed in creation order), so a user's records are marked in the order written.
    for (const shard of StreamDescription?.Shards ?? []) {
      const shardId = shard.ShardId!;
      let iterator = this.#iterators.get(shardId);
      if (iterator === null) continue;
      iterator ??= (await streams.send(new GetShardIteratorCommand({ StreamArn: this.#streamArn, ShardId: shardId, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator;
      while (iterator) {
        const page: GetRecordsCommandOutput = await streams.send(new GetRecordsCommand({ ShardIterator: iterator }));
        keys.push(...(page.Records ?? []).flatMap(writtenKey));
        // An open shard's iterator stays valid for the next drain; an empty page means this shard is read to its end for now.
        if ((page.Records ?? []).length === 0) {
          next.set(shardId, page.NextShardIterator ?? null);
          break;
        }
        iterator = page.NextShardIterator;
        if (!iterator) next.set(shardId, null);
      }
    }
    if (keys.length > 0) await sink.mark(keys);
    for (const [shardId, iterator] of next) this.#iterators.set(shardId, iterator);
    return keys.length;
  }
}

function writtenKey(record: _Record): WrittenKey[] {
  const keys = record.dynamodb?.Keys;
  const pk = keys?.['pk']?.S;
  const sk = keys?.['sk']?.S;
  if (record.eventName === 'REMOVE' || pk === undefined || sk === undefined) return [];
  return [{ pk, sk, at: record.dynamodb?.ApproximateCreationDateTime ?? new Date() }];
}
