/**
 * The ingest buffer's Firehose variant: what its construct, the ingest function's adapter and bench:cost share.
 */

/**
 * The default of the delivery stream's buffering interval, in seconds: Firehose writes what it gathered as one S3 object
 * at most this often (or sooner, at `bufferObjectMegabytes`), and the longer, the more of a visitor's events share a
 * table item. 300 matches the Kinesis variant's batching window.
 */
export const defaultFirehoseBufferSeconds = 300;

/** Where in the bucket Firehose puts the objects of accepted requests; the loader is notified of these only. */
export const bufferObjectsPrefix = 'requests/';

/** The loader function's memory, in MB (bench:cost prices its measured time at it). */
export const bufferLoaderMemoryMb = 1024;
