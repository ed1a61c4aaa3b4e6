/**
 * Who and what the at-scale patterns ask about, drawn from the loaded data
 * once per run: students (the heaviest, the active ones, their deepest
 * cursors), organization admins, ids to look up and stages to report, each
 * with a token the benchmark's service accepts.
 */
import pg from 'pg';
import type { TokenClaims } from '../../src/http/auth.js';
import { benchToken } from '../lib/service.js';
import type { ScalePlan } from './plan.js';

const token = (claims: TokenClaims) => benchToken(claims, { expiresIn: '2h' });

export type Student = { id: string; organizationId: string; count: number; token: string; deepCursor: { createdAt: string; id: string } };

export type Samples = {
  admin: string;
  worker: string;
  students: Student[];
  heaviest: Student;
  activeStudents: Student[];
  orgAdmins: { organizationId: string; token: string }[];
  correlationIds: string[];
  requestIds: string[];
  adminDeepCursor: { createdAt: string; id: string };
  reportTargets: { requestId: string; stage: string }[];
  submitStudents: string[];
  /** The in-flight statuses as the database defines them (pipeline_in_flight_statuses(), drizzle/0009). */
  inFlightStatuses: string[];
};

export const CURSOR_TIME = `to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

export async function drawSamples(sql: pg.Client, plan: ScalePlan): Promise<Samples> {
  const count = plan.queries.samples;
  const studentRows = async (where: string) => {
    const { rows } = await sql.query<{ student_id: string; organization_id: string; n: string }>(
      `select student_id, organization_id, count(*) as n from content_requests ${where}
        group by student_id, organization_id order by random() limit $1`,
      [count],
    );
    return rows;
  };
  const makeStudent = async (row: { student_id: string; organization_id: string; n: string }): Promise<Student> => {
    const n = Number(row.n);
    // A deep page: the last one of the student's history (or the middle when the history is short).
    const offset = n > 40 ? n - 20 : Math.floor(n / 2);
    const { rows } = await sql.query<{ t: string; id: string }>(
      `select ${CURSOR_TIME} as t, id from content_requests where student_id = $1
        order by created_at desc, id desc offset $2 limit 1`,
      [row.student_id, Math.max(0, offset - 1)],
    );
    return {
      id: row.student_id,
      organizationId: row.organization_id,
      count: n,
      token: await token({ sub: row.student_id, role: 'student', organization_id: row.organization_id }),
      deepCursor: { createdAt: rows[0]!.t, id: rows[0]!.id },
    };
  };
  // One connection: one query at a time.
  const sequentially = async <T, R>(items: T[], work: (item: T) => Promise<R>) => {
    const out: R[] = [];
    for (const item of items) out.push(await work(item));
    return out;
  };
  const students = await sequentially(await studentRows(''), makeStudent);
  const { rows: heavy } = await sql.query<{ student_id: string; organization_id: string; n: string }>(
    `select student_id, organization_id, count(*) as n from content_requests group by 1, 2 order by 3 desc limit 1`,
  );
  const heaviest = await makeStudent(heavy[0]!);
  const activeStudents = await sequentially(
    await studentRows(`where status not in ('completed', 'failed', 'cancelled')`),
    makeStudent,
  );
  const { rows: orgs } = await sql.query<{ organization_id: string }>(
    `select organization_id from organizations order by random() limit $1`,
    [count],
  );
  const orgAdmins = await Promise.all(
    orgs.map(async (o) => ({
      organizationId: o.organization_id,
      token: await token({ sub: `bench-org-admin-${o.organization_id}`, role: 'org_admin', organization_id: o.organization_id }),
    })),
  );
  const pick = () => 1 + Math.floor(Math.random() * plan.requests);
  const correlationIds = Array.from({ length: count }, () => `bench-${pick()}`);
  const { rows: ids } = await sql.query<{ id: string }>(
    `select overlay(overlay(md5('bench-request-' || i) placing '4' from 13) placing '8' from 17)::uuid::text as id from unnest($1::int[]) i`,
    [Array.from({ length: count }, pick)],
  );
  const { rows: deep } = await sql.query<{ t: string; id: string }>(
    `select ${CURSOR_TIME} as t, id from content_requests order by created_at desc, id desc offset $1 limit 1`,
    [Math.floor(plan.requests * 0.9)],
  );
  const { rows: targets } = await sql.query<{ request_id: string; stage_name: string }>(
    `select s.request_id, s.stage_name from request_stages s join content_requests r on r.id = s.request_id
      where s.status = 'in_progress' and r.status not in ('completed', 'failed', 'cancelled')`,
  );
  const { rows: inFlight } = await sql.query<{ status: string }>(
    `select s.status::text as status from unnest(pipeline_in_flight_statuses()) with ordinality as s(status, position) order by s.position`,
  );
  return {
    inFlightStatuses: inFlight.map((r) => r.status),
    admin: await token({ sub: 'bench-admin', role: 'admin' }),
    worker: await token({ sub: 'bench-worker', role: 'worker' }),
    students,
    heaviest,
    activeStudents,
    orgAdmins,
    correlationIds,
    requestIds: ids.map((r) => r.id),
    adminDeepCursor: { createdAt: deep[0]!.t, id: deep[0]!.id },
    reportTargets: targets.map((t) => ({ requestId: t.request_id, stage: t.stage_name })),
    submitStudents: students.map((s) => s.id),
  };
}

export const apiCursor = (c: { createdAt: string; id: string }) => Buffer.from(JSON.stringify([c.createdAt, c.id])).toString('base64url');
