import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';

/** The anchor GitHub gives a heading: lower case, punctuation dropped, each space a hyphen. */
const anchorOf = (heading: string) => heading.toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/ /g, '-');

it("links within the README only to its own headings, so its contents and cross-references lead somewhere", () => {
  const lines = readFileSync(join(import.meta.dirname, '../../README.md'), 'utf8').split('\n');
  const anchors = new Set<string>();
  const links: { anchor: string; line: number }[] = [];
  let inCode = false;
  lines.forEach((text, index) => {
    if (text.startsWith('```')) inCode = !inCode;
    if (inCode) return;
    const heading = /^#{1,6} (.*)/.exec(text);
    if (heading !== null) anchors.add(anchorOf(heading[1]!));
    for (const link of text.matchAll(/\]\(#([^)]+)\)/g)) links.push({ anchor: link[1]!, line: index + 1 });
  });
  expect(anchors).toContain('ingest-the-segment-http-tracking-api');
  expect(links.length).toBeGreaterThan(10);
  expect(links.filter((link) => !anchors.has(link.anchor))).toEqual([]);
});
