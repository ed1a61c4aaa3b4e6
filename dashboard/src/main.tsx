/**
 * The dashboard: sign in with a bearer token, then the requests in your
 * reach, live (`/`), or one request's timeline and event log (`/#/requests/<id>`).
 */
import { render } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { createTrackerClient, type ConnectionState } from './api.js';
import { RequestDetail } from './detail.js';
import { Overview } from './overview.js';
import { SignIn, TOKEN_KEY } from './sign-in.js';
import './style.css';

function useHashRoute(): string {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const changed = () => setHash(location.hash);
    addEventListener('hashchange', changed);
    return () => removeEventListener('hashchange', changed);
  }, []);
  return hash;
}

function App() {
  const [token, setToken] = useState(() => localStorage.getItem(TOKEN_KEY));
  const [connection, setConnection] = useState<ConnectionState>('connecting');
  const hash = useHashRoute();
  const client = useMemo(
    () => (token ? createTrackerClient({ url: location.origin, getToken: () => token, onStateChange: setConnection }) : undefined),
    [token],
  );
  useEffect(() => () => client?.close(), [client]);

  const signIn = (value: string | null) => {
    if (value) localStorage.setItem(TOKEN_KEY, value);
    else localStorage.removeItem(TOKEN_KEY);
    setToken(value);
  };
  if (!client) return <SignIn onSignIn={signIn} />;

  const detail = /^#\/requests\/([0-9a-f-]{36})$/i.exec(hash)?.[1];
  return (
    <>
      <header>
        <h1>
          <a href="#/">Content requests</a>
        </h1>
        <p class={`connection ${connection}`} role="status" data-connection={connection}>
          {connection}
        </p>
        <button type="button" onClick={() => signIn(null)}>
          Sign out
        </button>
      </header>
      {detail ? <RequestDetail key={detail} client={client} id={detail} /> : <Overview client={client} />}
    </>
  );
}

const root = document.getElementById('app')!;
root.replaceChildren(); // the "Loading…" placeholder: render() adds to what is there
render(<App />, root);
