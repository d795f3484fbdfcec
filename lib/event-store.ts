import { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import { Construct } from 'constructs';
import { tableDefinition } from '../functions/adapters/dynamodb/table-definition';

export interface EventStoreProps {
  /**
   * Refuse DeleteTable, also from the console. `cdk destroy` keeps the table either way (its removal policy is retain):
   * off only spares a throwaway stack's owner the `update-table` before deleting it by hand.
   * @default true
   */
  readonly deletionProtection?: boolean;
  /**
   * Standard-IA stores for 60% less than Standard and reads and writes for 25% more: it pays once events are kept for
   * longer than a few months (storage then outweighs the requests). DynamoDB lets a table change class twice in 30
   * days, online.
   * @default dynamodb.TableClass.STANDARD
   */
  readonly tableClass?: dynamodb.TableClass;
}

/**
 * The single DynamoDB table that holds events, entity state, write keys and quarantined messages, built from
 * the shared `tableDefinition` so that the deployed table and DynamoDB Local never disagree.
 *
 * Stateful and precious, so: point-in-time recovery, deletion protection and RemovalPolicy.RETAIN (deleting
 * the stack leaves the table behind). On-demand billing because ingest traffic is bursty and unknown upfront.
 *
 * Encrypted with the AWS managed key (`aws/dynamodb`) rather than a customer managed one: its use shows in
 * CloudTrail like any KMS key, it costs no monthly key fee, and there is no key policy to maintain and no key
 * that could be disabled or scheduled for deletion, which would make a retained table unreadable. Switch to
 * `TableEncryptionV2.customerManagedKey` if your compliance rules require control over the key policy.
 */
export class EventStore extends Construct {
  public readonly table: dynamodb.TableV2;
  /** The table's global secondary indexes, by name. */
  public readonly indexNames: readonly string[];
  /** The table is of the Standard-IA class. */
  public readonly infrequentAccess: boolean;

  constructor(scope: Construct, id: string, props: EventStoreProps = {}) {
    super(scope, id);

    const { partitionKey, sortKey, timeToLiveAttribute, dirtyIndex } = tableDefinition;
    const stringKey = (name: string): dynamodb.Attribute => ({ name, type: dynamodb.AttributeType.STRING });
    this.indexNames = [dirtyIndex.indexName];
    this.infrequentAccess = props.tableClass === dynamodb.TableClass.STANDARD_INFREQUENT_ACCESS;

    this.table = new dynamodb.TableV2(this, 'Table', {
      partitionKey: stringKey(partitionKey),
      sortKey: stringKey(sortKey),
      billing: dynamodb.Billing.onDemand(),
      timeToLiveAttribute,
      // Change capture (lib/change-capture.ts) reads the keys of what is written.
      dynamoStream: dynamodb.StreamViewType.KEYS_ONLY,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: dynamodb.TableEncryptionV2.awsManagedKey(),
      deletionProtection: props.deletionProtection ?? true,
      tableClass: props.tableClass,
      removalPolicy: RemovalPolicy.RETAIN,
      globalSecondaryIndexes: [
        {
          indexName: dirtyIndex.indexName,
          partitionKey: stringKey(dirtyIndex.partitionKey),
          sortKey: stringKey(dirtyIndex.sortKey),
          // The evaluator only needs the keys to find dirty entities; it reads the items themselves by key.
          projectionType: dynamodb.ProjectionType.KEYS_ONLY,
        },
      ],
    });
  }
}
