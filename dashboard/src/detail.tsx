/**
 * One request (`/#/requests/<id>`), live: its stage timeline with durations
 * and its event log, both from the event stream (every event from the first,
 * then each as it happens).
 */
import { useEffect, useState } from 'preact/hooks';
import type { RequestUpdate, Session } from './session.js';
import { ProgressBar, formatSeconds, secondsBetween, useNow } from './format.js';

type Event = NonNullable<RequestUpdate['event']>;
type StageSpan = { stage: string; startedAt: string; endedAt?: string; outcome?: string };

const REQUEST = `query ($id: ID!) { contentRequest(id: $id) { topic status progressPercentage student { name } } }`;

// How an event ends the stages still running (the request's own end closes its last stage).
const ENDINGS: Record<string, string> = { STAGE_COMPLETED: 'completed', COMPLETED: 'completed', FAILURE: 'failed', CANCEL: 'cancelled' };

/** The stages in the order they started, each with when it ended and how. */
function timeline(events: Event[]): StageSpan[] {
  const spans = new Map<string, StageSpan>();
  for (const event of events) {
    if (event.eventType === 'STAGE_STARTED' && event.stage) spans.set(event.stage, { stage: event.stage, startedAt: event.createdAt });
    const outcome = ENDINGS[event.eventType];
    if (!outcome) continue;
    for (const span of spans.values()) {
      // A stage's completion ends that stage; a failure, cancel or the request's completion, whatever still runs.
      const ends = event.eventType === 'STAGE_COMPLETED' ? span.stage === event.stage : true;
      if (ends && !span.endedAt) {
        span.endedAt = event.createdAt;
        span.outcome = outcome;
      }
    }
  }
  return [...spans.values()];
}

export function RequestDetail({ session, id }: { session: Session; id: string }) {
  const { client } = session;
  const [header, setHeader] = useState<{ topic: string; student: { name: string | null } | null }>();
  const [state, setState] = useState<{ status: string; progress: number }>();
  const [events, setEvents] = useState<Event[]>([]);
  const [problem, setProblem] = useState<string>();
  const now = useNow();

  useEffect(() => {
    let stopped = false;
    const watching = new AbortController();
    void (async () => {
      const { contentRequest } = await client.query<{ contentRequest: { topic: string; status: string; progressPercentage: number; student: { name: string | null } | null } | null }>(REQUEST, { id });
      if (!contentRequest) throw new Error('no such request in your reach');
      setHeader(contentRequest);
      setState({ status: contentRequest.status, progress: contentRequest.progressPercentage });
      // From sequence 0: the whole log, then each new event (the client drops any it has already yielded).
      for await (const update of client.watchRequest(id, { afterSequence: 0, signal: watching.signal })) {
        if (stopped) return;
        setState({ status: update.status, progress: update.progressPercentage });
        const event = update.event;
        if (event) setEvents((list) => [...list, event]);
      }
    })().catch((error: unknown) => !stopped && setProblem(session.report(error)));
    return () => {
      stopped = true;
      watching.abort();
    };
  }, [session, id]);

  return (
    <article class="detail" data-request-id={id}>
      <p><a href="#/">← all requests</a></p>
      <h2>{header?.topic ?? id}</h2>
      {problem && <p class="problem" role="alert">{problem}</p>}
      {header?.student?.name && <p>For {header.student.name}</p>}
      {state && (
        <p>
          <span class="status">{state.status}</span> <ProgressBar value={state.progress} /> {state.progress}%
        </p>
      )}
      <h3>Stages</h3>
      <ol class="timeline">
        {timeline(events).map((span) => (
          <li key={span.stage} data-stage={span.stage}>
            <strong>{span.stage}</strong> {span.outcome ?? 'running'}, {formatSeconds(secondsBetween(span.startedAt, span.endedAt ?? now))}
          </li>
        ))}
      </ol>
      <h3>Events</h3>
      <ol class="events">
        {events.map((event) => (
          <li key={event.sequence} data-sequence={event.sequence}>
            <time dateTime={event.createdAt}>{new Date(event.createdAt).toLocaleTimeString()}</time> #{event.sequence}{' '}
            {event.eventType.toLowerCase()} {event.stage ?? ''} → {event.newStatus}
          </li>
        ))}
      </ol>
    </article>
  );
}
