/**
 * Forward pages, as every paged read here takes them: a page of `first` rows
 * is read as one row more, and that row, if it came, says a next page exists.
 */
export const rowsToRead = (first: number) => first + 1;

/** The page within rows read with rowsToRead(first). */
export function pageOfRows<T>(rows: readonly T[], first: number): { rows: T[]; hasNextPage: boolean } {
  return { rows: rows.slice(0, first), hasNextPage: rows.length > first };
}
