import { InvalidArgumentError } from 'commander';
import { constants } from 'node:fs';
import { access, stat, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

/**
 * Output files named by an option (backtest --report, discover --out, sample --out). They are written only once the
 * run is done, so that a failed run leaves no empty or partial file behind; checking them first means a mistyped path
 * fails at once, naming the option, instead of with a bare ENOENT after minutes of reading (or generating) events. The
 * check creates nothing.
 */

const reasonOf = (error: unknown) => {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'EACCES' || code === 'EPERM' ? 'permission denied' : code === 'EROFS' ? 'read-only file system' : (error as Error).message;
};

/** Whether a stat failed because nothing is there (a missing directory on the way, or a file where one should be). */
const absent = (error: unknown) => ['ENOENT', 'ENOTDIR'].includes((error as NodeJS.ErrnoException).code ?? '');

/** Refuses, naming the option and the reason, a path the command could not write its file to. */
export async function checkOutputFile(option: string, file: string): Promise<void> {
  const refuse = (reason: string) => new InvalidArgumentError(`${option} ${file}: ${reason}`);
  const existing = await stat(file).catch((error: unknown) => {
    if (absent(error)) return undefined;
    throw refuse(`cannot be reached: ${reasonOf(error)}`);
  });
  if (existing !== undefined) {
    if (existing.isDirectory()) throw refuse('is a directory; give the name of a file to write');
    await access(file, constants.W_OK).catch((error: unknown) => {
      throw refuse(`cannot be written: ${reasonOf(error)}`);
    });
    return;
  }
  const directory = dirname(file);
  const parent = await stat(resolve(directory)).catch((error: unknown) => {
    if (absent(error)) throw refuse(`the directory ${directory} does not exist`);
    throw refuse(`the directory ${directory} cannot be reached: ${reasonOf(error)}`);
  });
  if (!parent.isDirectory()) throw refuse(`${directory} is not a directory`);
  await access(directory, constants.W_OK | constants.X_OK).catch((error: unknown) => {
    throw refuse(`no file can be created in ${directory}: ${reasonOf(error)}`);
  });
}

/** Writes a checked output file; should the place have changed since the check, the error still names the option. */
export async function writeOutputFile(option: string, file: string, text: string): Promise<void> {
  await writeFile(file, text).catch((error: unknown) => {
    throw new Error(`${option} ${file}: cannot be written: ${reasonOf(error)}`);
  });
}
