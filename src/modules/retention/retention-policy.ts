/** Rows removed by one batch, by table (the `table` label of taskhub_retention_deleted_total). */
export type RetentionBatch = Record<string, number>;

/**
 * One bound on something that accumulates (docs/retention.md). The module owning the table
 * registers it with RetentionRegistry; the cleaner runs every policy once per pass, on one hub
 * at a time. A policy reads its settings at the start of each pass (they may be hot).
 */
export interface RetentionPolicy {
  /** A short name for logs: usually the table. */
  readonly name: string;
  /**
   * Removes what is past the bound, in batches of at most `batchSize` rows, each its own short
   * statement; yields what each removed. The cleaner may stop iterating between batches.
   */
  batches(batchSize: number): AsyncIterable<RetentionBatch>;
}

/**
 * The batches of `deleteBatch` (one statement removing at most `batchSize` rows of `table`,
 * answering how many, and what it removed of other tables with them) until one comes back
 * short: what is left was locked (the next pass takes it) or is done.
 */
export async function* untilShort(
  table: string,
  batchSize: number,
  deleteBatch: () => Promise<{ n: number; also?: RetentionBatch }>,
): AsyncGenerator<RetentionBatch> {
  for (;;) {
    const { n, also } = await deleteBatch();
    if (n > 0) yield { [table]: n, ...also };
    if (n < batchSize) return;
  }
}
