import { DescribeTableCommand, GetItemCommand, PutItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DescribeStreamCommand,
  DynamoDBStreamsClient,
  GetRecordsCommand,
  GetShardIteratorCommand,
  TrimmedDataAccessException,
  type GetRecordsCommandOutput,
  type _Record,
} from '@aws-sdk/client-dynamodb-streams';
import type { WrittenKey } from '../adapters/dynamodb/change-capture';
import { metaPartitionKey, streamPositionSortKey } from '../adapters/dynamodb/item-keys';

/** What takes the keys read: change capture into lists, or the evaluator evaluating them at once. */
export interface ChangeSink {
  mark(keys: readonly WrittenKey[]): Promise<unknown>;
}

/** How far a stream has been read: the last sequence number read in each of its shards, by shard id. */
interface StreamPosition {
  streamArn: string;
  shards: ReadonlyMap<string, string>;
}

/**
 * The local runtime's reader of the table's stream, in place of the deployed event source mapping: each drain() reads
 * every shard of DynamoDB Local's stream from the position to its end and hands the written keys to a sink (the
 * evaluator, or change capture into lists), all at once. The position moves only once the sink has taken them: a sink
 * that fails, or a process that stops before the position is saved, leaves the keys unread, and the next drain reads
 * them again (harmless: marking and evaluating are idempotent).
 *
 * With `positionInTable` (npm start, `pql-radar evaluate`) the position is kept in the table, as the event source
 * mapping keeps its own, so that the next `evaluate --once`, or npm start restarted on the same --data-dir, reads only
 * what came since rather than the whole stream (24 hours of history, every entity evaluated again). Without it, this
 * object keeps it, and a new one reads from the oldest record the stream keeps: the benches and tests that stand in for
 * the event source mapping, whose reads of the stream must add no write to the table (the benches bill every write).
 */
export class LocalChangeStream {
  #streams: DynamoDBStreamsClient | undefined;
  /** The position when this object keeps it. */
  #position: StreamPosition | undefined;
  #draining: Promise<number> = Promise.resolve(0);

  constructor(
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
    private readonly sink: ChangeSink,
    private readonly options: { positionInTable?: boolean } = {},
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
    // Asked at every drain: a table deleted and created again under the same name has another stream.
    const streamArn = (await this.client.send(new DescribeTableCommand({ TableName: this.tableName }))).Table?.LatestStreamArn;
    if (!streamArn) throw new Error(`table ${this.tableName} has no stream: change capture needs one`);
    const position = this.options.positionInTable ? await readPosition(this.client, this.tableName) : this.#position;
    // Another stream's sequence numbers say nothing of this one's records: it is read from its start.
    const from = position?.streamArn === streamArn ? position.shards : new Map<string, string>();
    const { StreamDescription } = await streams.send(new DescribeStreamCommand({ StreamArn: streamArn }));
    // Every record up to the end of every shard goes to the sink in one call (an entity's records may sit on several
    // pages and shards).
    const keys: WrittenKey[] = [];
    // Only the shards listed now: a shard no longer listed was trimmed, after it closed and its records expired, and
    // its children, new to the position, are read from their start.
    const reached = new Map<string, string>();
    let readOtherThanPosition = false;
    // Parents first (shards are listed in creation order), so a user's records are marked in the order written.
    for (const shard of StreamDescription?.Shards ?? []) {
      const shardId = shard.ShardId!;
      const after = from.get(shardId);
      // A closed shard read to its end has nothing more (DynamoDB Local closes one every 4 hours): not asked again.
      const records = after !== undefined && after === shard.SequenceNumberRange?.EndingSequenceNumber ? [] : await readShard(streams, streamArn, shardId, after);
      const last = records.at(-1)?.dynamodb?.SequenceNumber ?? after;
      if (last !== undefined) reached.set(shardId, last);
      keys.push(...records.flatMap(writtenKey));
      readOtherThanPosition ||= records.some((record) => !isPositionWrite(record));
    }
    if (keys.length > 0) await sink.mark(keys);
    const next = { streamArn, shards: reached };
    if (!this.options.positionInTable) this.#position = next;
    // Saving the position is a write the stream carries too: saved after reading only such writes, every drain would
    // read one and write one more, forever.
    else if (readOtherThanPosition) await savePosition(this.client, this.tableName, next);
    return keys.length;
  }
}

/** The shard's records after `after` (from the oldest it keeps without one), up to its end for now. */
async function readShard(streams: DynamoDBStreamsClient, streamArn: string, shardId: string, after: string | undefined): Promise<_Record[]> {
  const start = after === undefined ? { ShardIteratorType: 'TRIM_HORIZON' as const } : { ShardIteratorType: 'AFTER_SEQUENCE_NUMBER' as const, SequenceNumber: after };
  try {
    let iterator = (await streams.send(new GetShardIteratorCommand({ StreamArn: streamArn, ShardId: shardId, ...start }))).ShardIterator;
    const records: _Record[] = [];
    while (iterator) {
      const page: GetRecordsCommandOutput = await streams.send(new GetRecordsCommand({ ShardIterator: iterator }));
      // An empty page: an open shard is read to its end for now.
      if ((page.Records ?? []).length === 0) break;
      records.push(...page.Records!);
      iterator = page.NextShardIterator;
    }
    return records;
  } catch (error) {
    // The records after the position are gone, older than the stream keeps (24 hours: npm start stopped for a day):
    // nothing read them, and what the shard still holds is all there is left to read.
    if (after !== undefined && error instanceof TrimmedDataAccessException) return readShard(streams, streamArn, shardId, undefined);
    throw error;
  }
}

const positionKey = { pk: { S: metaPartitionKey }, sk: { S: streamPositionSortKey } };

async function readPosition(client: DynamoDBClient, tableName: string): Promise<StreamPosition | undefined> {
  const { Item } = await client.send(new GetItemCommand({ TableName: tableName, Key: positionKey, ConsistentRead: true }));
  if (Item?.['streamArn']?.S === undefined) return undefined;
  return { streamArn: Item['streamArn'].S, shards: new Map(Object.entries(Item['shards']?.M ?? {}).map(([shardId, sequenceNumber]) => [shardId, sequenceNumber.S!])) };
}

/**
 * Unconditional, last writer wins. Two readers at once (npm start's timer and `pql-radar evaluate`) each save only
 * what their own sink has taken, from a position whose records were all taken before: whichever saves last may move
 * the position back over what the other read, which the next drain reads again, but never past a record no sink has.
 */
async function savePosition(client: DynamoDBClient, tableName: string, position: StreamPosition): Promise<void> {
  const shards = Object.fromEntries([...position.shards].map(([shardId, sequenceNumber]) => [shardId, { S: sequenceNumber }]));
  await client.send(new PutItemCommand({ TableName: tableName, Item: { ...positionKey, streamArn: { S: position.streamArn }, shards: { M: shards } } }));
}

const isPositionWrite = (record: _Record) => record.dynamodb?.Keys?.['pk']?.S === metaPartitionKey && record.dynamodb.Keys['sk']?.S === streamPositionSortKey;

function writtenKey(record: _Record): WrittenKey[] {
  const keys = record.dynamodb?.Keys;
  const pk = keys?.['pk']?.S;
  const sk = keys?.['sk']?.S;
  if (record.eventName === 'REMOVE' || pk === undefined || sk === undefined) return [];
  return [{ pk, sk, at: record.dynamodb?.ApproximateCreationDateTime ?? new Date() }];
}
