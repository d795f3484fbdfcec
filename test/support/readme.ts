import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** A fenced code block of README.md, for tests that hold the README's examples to the code. */
export interface ReadmeBlock {
  /** The heading of the section it is in, without the #s. */
  readonly section: string;
  /** The fence's language, e.g. yaml; empty when it names none. */
  readonly language: string;
  readonly code: string;
  /** The line of its opening fence, for a failure that points at it. */
  readonly line: number;
  /** The text between the heading or block before it and its fence: what introduces it. */
  readonly lead: string;
}

export function readmeBlocks(): ReadmeBlock[] {
  const lines = readFileSync(join(import.meta.dirname, '../../README.md'), 'utf8').split('\n');
  const blocks: ReadmeBlock[] = [];
  let section = '';
  let lead: string[] = [];
  let open: { language: string; line: number; code: string[] } | undefined;
  lines.forEach((text, index) => {
    const fence = /^```(\S*)/.exec(text);
    if (open !== undefined) {
      if (fence === null) open.code.push(text);
      else {
        blocks.push({ section, language: open.language, code: `${open.code.join('\n')}\n`, line: open.line, lead: lead.join('\n') });
        open = undefined;
        lead = [];
      }
      return;
    }
    // Only outside a block: a shell block's comments start with # too.
    const heading = /^#{1,6} (.*)/.exec(text);
    if (heading !== null) {
      section = heading[1]!;
      lead = [];
    } else if (fence !== null) open = { language: fence[1]!, line: index + 1, code: [] };
    else lead.push(text);
  });
  return blocks;
}
