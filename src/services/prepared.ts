import type { Queryable } from '../db/client.js';

/**
 * A statement built once per database rather than on every call (Drizzle
 * otherwise rebuilds its SQL each time, a hot path's largest cost in the
 * service). Give it no name (`.prepare('')`): a named statement lives on
 * one server connection, and a transaction-mode pooler (pgbouncer before 1.21)
 * hands the next transaction another one, where it does not exist.
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
