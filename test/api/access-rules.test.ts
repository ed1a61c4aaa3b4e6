/**
 * "Adding a role fails the type check until every rule has decided for it":
 * the TypeScript compiler runs over src/ twice, as it is and with one more
 * role in `userRoles` (an in-memory edit of db/tables.ts, nothing on disk).
 * The added role must be an error in every role rule of services/access.ts,
 * and nowhere else: no other file decides by role.
 */
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, inject, test } from 'vitest';

const root = path.resolve(import.meta.dirname, '../..');
const tablesFile = path.join(root, 'src/db/tables.ts');
const accessFile = path.join(root, 'src/services/access.ts');
const roleList = "export const userRoles = ['student', 'org_admin', 'admin', 'worker'] as const;";

/** Every rule in access.ts that switches over the viewer's role. */
const roleRules = [
  'canSeeRequest',
  'requestScope',
  'assertMaySubmitFor',
  'canSubmitFor',
  'idempotencyKeyScope',
  'isExemptFromMutationLimit',
  'assertCanReportStages',
  'feedSource',
  'metricsOrganization',
  'stalledRequestsScope',
];

function loadOptions(): { options: ts.CompilerOptions; srcFiles: string[] } {
  const configFile = ts.readConfigFile(path.join(root, 'tsconfig.json'), ts.sys.readFile);
  const parsed = ts.parseJsonConfigFileContent(configFile.config, ts.sys, root);
  const srcFiles = parsed.fileNames.filter((file) => file.startsWith(path.join(root, 'src') + path.sep));
  return { options: parsed.options, srcFiles };
}

/** Type errors in src/ with db/tables.ts read through `editTables`. */
function typeErrors(editTables: (text: string) => string, oldProgram?: ts.Program) {
  const { options, srcFiles } = loadOptions();
  const host = ts.createCompilerHost(options);
  const readFile = host.readFile.bind(host);
  host.readFile = (file) => {
    const text = readFile(file);
    return text !== undefined && path.resolve(file) === tablesFile ? editTables(text) : text;
  };
  const program = ts.createProgram({ rootNames: srcFiles, options, host, ...(oldProgram ? { oldProgram } : {}) });
  const errors = ts.getPreEmitDiagnostics(program).filter((d) => d.category === ts.DiagnosticCategory.Error);
  return { program, errors };
}

/** The name of the top-level function a diagnostic falls in. */
function enclosingFunction(diagnostic: ts.Diagnostic): string | undefined {
  const file = diagnostic.file;
  if (!file || diagnostic.start === undefined) return undefined;
  const at = diagnostic.start;
  const declaration = file.statements.find((s) => s.getStart(file) <= at && at < s.getEnd());
  return declaration && ts.isFunctionDeclaration(declaration) ? declaration.name?.text : undefined;
}

// The compiler needs no database: once is enough.
describe.skipIf(inject('testDatabase').kind === 'postgres')('role rules are exhaustive', () => {
  test('a role added to userRoles is a type error in every role rule of access.ts, and nowhere else', () => {
    const unchanged = typeErrors((text) => text);
    expect(unchanged.errors.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'))).toEqual([]);

    const withNewRole = typeErrors((text) => {
      expect(text).toContain(roleList);
      return text.replace(roleList, roleList.replace("'worker'", "'worker', 'auditor'"));
    }, unchanged.program);
    const files = new Set(withNewRole.errors.map((d) => d.file && path.resolve(d.file.fileName)));
    expect([...files]).toEqual([accessFile]);
    const rules = new Set(withNewRole.errors.map(enclosingFunction));
    expect([...rules].sort()).toEqual([...roleRules].sort());
  }, 300_000); // two whole-program type checks: minutes on a busy machine
});
