/**
 * Which content_requests columns a selection of ContentRequest fields reads,
 * so a page of requests is read with those only: a history page names 6 of the
 * 23 columns, and the others (two JSON documents and four timestamps among
 * them) cost PostgreSQL to send and the service to parse.
 *
 * A field says what it reads: the column it exposes (Pothos records it as
 * `pothosExposedField`) or `requestColumns` in its extensions. A field that
 * says neither, or a selection this does not follow, reads every column, so a
 * field added later is correct before it is cheap. `@skip` and `@include` are
 * not evaluated: their fields count as selected (a superset is always safe).
 */
import { Kind, type FieldNode, type GraphQLObjectType, type GraphQLResolveInfo, type SelectionSetNode } from 'graphql';
import { REQUEST_COLUMNS, type RequestColumn } from '../services/requests.js';

/** The columns a field of ContentRequest reads, for its definition's `extensions`. */
export const readsColumns = (...columns: RequestColumn[]) => ({ extensions: { requestColumns: columns } });

type Fragments = GraphQLResolveInfo['fragments'];

/** The fields' columns, added to `into`; false when one of them reads every column. */
function collectColumns(selectionSet: SelectionSetNode, type: GraphQLObjectType, fragments: Fragments, into: Set<RequestColumn>): boolean {
  for (const selection of selectionSet.selections) {
    if (selection.kind === Kind.FIELD) {
      if (selection.name.value === '__typename') continue;
      const extensions = type.getFields()[selection.name.value]?.extensions;
      const exposed = extensions?.pothosExposedField;
      const declared = extensions?.requestColumns;
      if (typeof exposed === 'string' && REQUEST_COLUMNS.has(exposed)) into.add(exposed as RequestColumn);
      else if (Array.isArray(declared)) for (const column of declared as RequestColumn[]) into.add(column);
      else return false;
    } else {
      const fragment = selection.kind === Kind.FRAGMENT_SPREAD ? fragments[selection.name.value] : selection;
      const condition = fragment?.typeCondition?.name.value;
      if (!fragment || (condition !== undefined && condition !== type.name)) return false;
      if (!collectColumns(fragment.selectionSet, type, fragments, into)) return false;
    }
  }
  return true;
}

/** The selection sets found at `path` (field names) under these fields, fragments followed. */
function selectionsAt(fields: readonly FieldNode[], path: readonly string[], fragments: Fragments): SelectionSetNode[] {
  let sets = fields.flatMap((field) => (field.selectionSet ? [field.selectionSet] : []));
  for (const name of path) {
    const next: SelectionSetNode[] = [];
    const visit = (set: SelectionSetNode) => {
      for (const selection of set.selections) {
        if (selection.kind === Kind.FIELD) {
          if (selection.name.value === name && selection.selectionSet) next.push(selection.selectionSet);
        } else {
          const fragment = selection.kind === Kind.FRAGMENT_SPREAD ? fragments[selection.name.value] : selection;
          if (fragment) visit(fragment.selectionSet);
        }
      }
    };
    sets.forEach(visit);
    sets = next;
  }
  return sets;
}

// Per field node of a cached document: the same operation asks for the same columns every time.
const known = new WeakMap<FieldNode, ReadonlySet<RequestColumn> | null>();

/**
 * The columns the ContentRequest objects at `path` under the resolved field
 * read (`['edges', 'node']` for a connection), or undefined for all of them.
 */
export function selectedRequestColumns(info: GraphQLResolveInfo, path: readonly string[]): ReadonlySet<RequestColumn> | undefined {
  const cacheable = info.fieldNodes.length === 1 ? info.fieldNodes[0]! : undefined;
  const cached = cacheable && known.get(cacheable);
  if (cached !== undefined) return cached ?? undefined;
  const type = info.schema.getType('ContentRequest') as GraphQLObjectType;
  const columns = new Set<RequestColumn>();
  const complete = selectionsAt(info.fieldNodes, path, info.fragments).every((set) => collectColumns(set, type, info.fragments, columns));
  if (cacheable) known.set(cacheable, complete ? columns : null);
  return complete ? columns : undefined;
}
