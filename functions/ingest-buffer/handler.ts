// Placeholder so that synth can bundle the ingest buffer's consumer; the real handler comes from main.
export const handler = async () => {};
