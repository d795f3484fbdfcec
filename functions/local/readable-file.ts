import { readFileSync } from 'node:fs';

/** Why a file could not be read, in words, for the reasons an operator meets (undefined for any other: its own message says more). */
export function unreadableReason(error: unknown): string | undefined {
  switch ((error as NodeJS.ErrnoException | undefined)?.code) {
    case 'ENOENT':
      return 'no such file';
    case 'EISDIR':
      return 'is a directory, not a file';
    case 'EACCES':
      return 'permission denied';
    default:
      return undefined;
  }
}

/** A file the operator named that cannot be read: its message names it and why. */
export class UnreadableFileError extends Error {
  override name = 'UnreadableFileError';
}

/** A text file the operator named, read whole; an error that names it and why when it cannot be (`rules.yaml: no such file`). */
export function readTextFile(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new UnreadableFileError(`${file}: ${unreadableReason(error) ?? (error instanceof Error ? error.message : String(error))}`);
  }
}
