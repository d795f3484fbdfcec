import { InvalidArgumentError } from 'commander';

/**
 * A whole number option's parser (commander's), at least `min`: 1 where none would mean nothing, or loop for ever
 * (--batch-size 0); at most `max` where more cannot be used. A module of its own, without options.ts's imports: a
 * backtest starts without the AWS SDK.
 */
export const integer = (name: string, min = 0, max = Number.POSITIVE_INFINITY) => (value: string) => {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < min || parsed > max) {
    const range = max < Number.POSITIVE_INFINITY ? `, ${min} to ${max}` : min > 0 ? `, at least ${min}` : '';
    throw new InvalidArgumentError(`${name} must be a whole number${range}`);
  }
  return parsed;
};

/** A TCP port (0: any free one). Above 65535, Node's listen would refuse it naming its own `options.port`. */
export const port = (name: string) => integer(name, 0, 65_535);
