/**
 * The requests in the viewer's reach, live: the active ones (one row each,
 * with a progress bar and time in stage), the recently finished, and the
 * failures with a retry button.
 */
import { useEffect, useState } from 'preact/hooks';
import type { RequestUpdate, Session } from './session.js';
import { LEAVES_ACTIVE, applyUpdate, describeRow, type Board, type Row } from './board.js';
import { ProgressBar, formatSeconds, secondsBetween, useNow } from './format.js';

type Failure = { id: string; topic: string; errorStage: string | null; errorMessage: string | null };

const ACTIVE = `query { activeRequests(first: 100) { id topic studentName status currentStage progressPercentage stageStartedAt } }`;
const STAGES = `query { pipelineStages { name displayName expectedDurationSeconds } }`;
const ONE = `query ($id: ID!) { contentRequest(id: $id) { topic estimatedCompletionAt student { name } stages { stage startedAt } } }`;
const RETRY = `mutation ($id: ID!) { retryContentRequest(id: $id) { id status } }`;

type Stage = { name: string; displayName: string; expectedDurationSeconds: number };

export function Overview({ session }: { session: Session }) {
  const { client } = session;
  const [board, setBoard] = useState<Board>({ active: new Map(), finished: [] });
  const { active, finished } = board;
  const [failures, setFailures] = useState(new Map<string, Failure>());
  const [stages, setStages] = useState(new Map<string, Stage>());
  const [problem, setProblem] = useState<string>();
  const now = useNow();

  useEffect(() => {
    let stopped = false;
    const watching = new AbortController();
    // Requests whose topic and student have been read (or are being read).
    const described = new Set<string>();
    // What the feed does not carry (topic, student, when the stage started), read once per request.
    const describe = async (id: string) => {
      const { contentRequest: found } = await client.query<{ contentRequest: { topic: string; estimatedCompletionAt: string | null; student: { name: string | null } | null; stages: { stage: string; startedAt: string | null }[] } | null }>(ONE, { id });
      if (!found) return;
      const stageStartedAt = (stage: string | null) => found.stages.find((s) => s.stage === stage)?.startedAt;
      setBoard((current) => describeRow(current, id, { topic: found.topic, studentName: found.student?.name, stageStartedAt, readyAt: found.estimatedCompletionAt }));
    };
    const apply = (update: RequestUpdate) => {
      setFailures((current) => (update.status !== 'FAILED' && current.has(update.requestId) ? withoutKey(current, update.requestId) : current));
      setBoard((current) => applyUpdate(current, update));
      if (LEAVES_ACTIVE.has(update.status)) {
        described.delete(update.requestId); // a retried request comes back as a new row
        return;
      }
      if (!described.has(update.requestId)) {
        described.add(update.requestId);
        void describe(update.requestId).catch(() => described.delete(update.requestId));
      }
    };
    const fail = (error: unknown) => !stopped && setProblem(session.report(error));

    void (async () => {
      const [{ pipelineStages }, { activeRequests }] = await Promise.all([
        client.query<{ pipelineStages: Stage[] }>(STAGES),
        client.query<{ activeRequests: (Omit<Row, 'stage' | 'progress'> & { currentStage: string | null; progressPercentage: number })[] }>(ACTIVE),
      ]);
      for (const { id } of activeRequests) described.add(id);
      setStages(new Map(pipelineStages.map((stage) => [stage.name, stage])));
      const rows = activeRequests.map((r): Row => ({ ...r, stage: r.currentStage, progress: r.progressPercentage }));
      setBoard((current) => ({ ...current, active: new Map([...rows.map((row): [string, Row] => [row.id, row]), ...current.active]) }));
      for await (const update of client.watchUpdates({}, { withEta: true, signal: watching.signal })) {
        if (stopped) return;
        apply(update);
      }
    })().catch(fail);
    void (async () => {
      for await (const update of client.watchUpdates({ status: ['FAILED'] }, { withRequest: true, signal: watching.signal })) {
        if (stopped) return;
        const { topic, errorStage, errorMessage } = update.request!;
        setFailures((current) => new Map(current).set(update.requestId, { id: update.requestId, topic, errorStage, errorMessage }));
      }
    })().catch(fail);
    return () => {
      stopped = true;
      watching.abort();
    };
  }, [session]);

  const retry = (id: string) =>
    client.query(RETRY, { id }).then(
      () => setFailures((current) => withoutKey(current, id)),
      (error: unknown) => setProblem(`retry failed: ${session.report(error)}`),
    );

  return (
    <>
      {problem && <p class="problem" role="alert">{problem}</p>}
      <section aria-labelledby="active-heading">
        <h2 id="active-heading">Active requests ({active.size})</h2>
        <table class="requests" id="active">
          <thead>
            <tr><th>Topic</th><th>Student</th><th>Stage</th><th>Status</th><th>Progress</th><th>In stage</th><th>Ready in</th></tr>
          </thead>
          <tbody>
            {[...active.values()].map((row) => {
              const stage = row.stage ? stages.get(row.stage) : undefined;
              const inStage = row.stageStartedAt ? secondsBetween(row.stageStartedAt, now) : undefined;
              const overdue = inStage !== undefined && stage !== undefined && inStage > stage.expectedDurationSeconds;
              return (
                <tr key={row.id} data-request-id={row.id} class={overdue ? 'overdue' : undefined}>
                  <td><a href={`#/requests/${row.id}`}>{row.topic ?? '…'}</a></td>
                  <td>{row.studentName ?? ''}</td>
                  <td>{stage?.displayName ?? row.stage ?? '—'}</td>
                  <td class="status">{row.status}</td>
                  <td><ProgressBar value={row.progress} /> {row.progress}%</td>
                  <td>
                    {inStage === undefined ? '—' : formatSeconds(inStage)}
                    {overdue && <strong class="overdue-marker"> overdue</strong>}
                  </td>
                  <td class="ready-in">{row.readyAt ? `~${formatSeconds(Math.max(0, secondsBetween(new Date(now).toISOString(), row.readyAt)))}` : '—'}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </section>
      <section aria-labelledby="failures-heading">
        <h2 id="failures-heading">Failures ({failures.size})</h2>
        <ul id="failures">
          {[...failures.values()].map((failure) => (
            <li key={failure.id} data-request-id={failure.id}>
              <a href={`#/requests/${failure.id}`}>{failure.topic}</a>: failed in <strong>{failure.errorStage ?? '?'}</strong>
              {failure.errorMessage && <>: {failure.errorMessage}</>}{' '}
              <button type="button" onClick={() => void retry(failure.id)}>Retry</button>
            </li>
          ))}
        </ul>
      </section>
      <section aria-labelledby="finished-heading">
        <h2 id="finished-heading">Recently finished</h2>
        <ul id="finished">
          {finished.map((row) => (
            <li key={row.id} data-request-id={row.id}>
              <a href={`#/requests/${row.id}`}>{row.topic ?? row.id}</a> <ProgressBar value={row.progress} /> {row.status.toLowerCase()}
            </li>
          ))}
        </ul>
      </section>
    </>
  );
}

function withoutKey<V>(map: Map<string, V>, key: string): Map<string, V> {
  const next = new Map(map);
  next.delete(key);
  return next;
}
