/**
 * Whether a conditional write failed only because its condition did not hold: another writer got there first, or the
 * write was made already. By name, not `instanceof`: a client bundled twice (a test's and the adapter's) throws its
 * own class.
 */
export const conditionFailed = (error: unknown): boolean => error instanceof Error && error.name === 'ConditionalCheckFailedException';

/** Whether a transaction was cancelled because a condition of one of its items did not hold (see conditionFailed). */
export const transactionConditionFailed = (error: unknown): boolean =>
  error instanceof Error && error.name === 'TransactionCanceledException' && /ConditionalCheckFailed/.test(error.message);
