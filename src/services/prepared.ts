import type { Queryable } from '../db/client.js';

/**
 * A statement built once per database rather than on every call (Drizzle
 * otherwise rebuilds its SQL each time, a hot path's largest cost in the
 * service). Build it with `.prepare(nameForStatement(db))` (db/client.ts): a
 * name while the database was opened with named statements and has names
 * left, so PostgreSQL parses it once per connection and may keep its plan;
 * otherwise unnamed, as a transaction-mode pooler needs (it may hand the next
 * transaction a connection where a named statement does not exist).
 */
export function preparedPerDatabase<T>(prepare: (db: Queryable) => T): (db: Queryable) => T {
  const prepared = new WeakMap<Queryable, T>();
  return (db) => {
    let statement = prepared.get(db);
    if (statement === undefined) {
      statement = prepare(db);
      prepared.set(db, statement);
    }
    return statement;
  };
}

/**
 * Statements of one kind in several shapes (the viewer's role, the filters
 * given, the columns read), each built once per database on first use. At
 * most `limit` shapes are kept per database, the oldest dropped first: what
 * a client chooses (filters, columns) must not grow this without bound.
 */
export function preparedPerShape<T>(limit: number): (db: Queryable, shape: string, build: () => T) => T {
  const byDatabase = preparedPerDatabase(() => new Map<string, T>());
  return (db, shape, build) => {
    const byShape = byDatabase(db);
    let statement = byShape.get(shape);
    if (statement === undefined) {
      if (byShape.size >= limit) byShape.delete(byShape.keys().next().value!);
      statement = build();
      byShape.set(shape, statement);
    }
    return statement;
  };
}
