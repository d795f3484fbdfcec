/** A zod issue's path as a reader writes it: `batch[2].properties.plan`. */
export function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((formatted, segment) => {
    if (typeof segment === 'number') return `${formatted}[${segment}]`;
    return formatted ? `${formatted}.${String(segment)}` : String(segment);
  }, '');
}
