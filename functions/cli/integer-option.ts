import { InvalidArgumentError } from 'commander';

/**
 * A whole number option's parser (commander's), at least `min`: 1 where none would mean nothing, or loop for ever
 * (--batch-size 0). A module of its own, without options.ts's imports: a backtest starts without the AWS SDK.
 */
export const integer = (name: string, min = 0) => (value: string) => {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < min) throw new InvalidArgumentError(`${name} must be a whole number${min > 0 ? `, at least ${min}` : ''}`);
  return parsed;
};
