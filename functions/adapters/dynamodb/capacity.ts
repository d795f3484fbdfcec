import type { ConsumedCapacity } from '@aws-sdk/client-dynamodb';

/** Adds up the capacity units DynamoDB reports (ReturnConsumedCapacity TOTAL), so benchmarks and metrics can show the cost per event. */
export class CapacityTally {
  readUnits = 0;
  writeUnits = 0;

  add(kind: 'read' | 'write', consumed: ConsumedCapacity | ConsumedCapacity[] | undefined): void {
    const units = [consumed ?? []].flat().reduce((sum, entry) => sum + (entry.CapacityUnits ?? 0), 0);
    if (kind === 'read') this.readUnits += units;
    else this.writeUnits += units;
  }
}
