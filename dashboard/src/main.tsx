/**
 * The dashboard: sign in with a bearer token, then the requests in your
 * reach, live (`/`), or one request's timeline and event log (`/#/requests/<id>`).
 */
import { render } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { openSession, type ConnectionState } from './session.js';
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
  // Why the viewer is back at sign-in, when the service sent them there.
  const [signedOutBecause, setSignedOutBecause] = useState<string>();
  const hash = useHashRoute();

  const signIn = (value: string | null, reason?: string) => {
    if (value) localStorage.setItem(TOKEN_KEY, value);
    else localStorage.removeItem(TOKEN_KEY);
    setSignedOutBecause(reason);
    setToken(value);
  };
  const session = useMemo(
    () => (token ? openSession(token, setConnection, (reason) => signIn(null, reason)) : undefined),
    [token],
  );
  useEffect(() => () => void session?.client.close(), [session]);
  if (!session) return <SignIn onSignIn={signIn} reason={signedOutBecause} />;

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
      {detail ? <RequestDetail key={detail} session={session} id={detail} /> : <Overview session={session} />}
    </>
  );
}

const root = document.getElementById('app')!;
root.replaceChildren(); // the "Loading…" placeholder: render() adds to what is there
render(<App />, root);
