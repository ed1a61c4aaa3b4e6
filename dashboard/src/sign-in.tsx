/** Sign-in: a bearer token pasted in, or (embedded development mode) one click per demo user. */
import { useState } from 'preact/hooks';

export const TOKEN_KEY = 'tracker.token';

type SignInOption = { name: string; role: string; token: string };

/** The demo users the server wrote into the page; none outside the embedded development mode. */
function offeredSignIns(): SignInOption[] {
  const data = document.getElementById('sign-ins')?.textContent;
  return data ? (JSON.parse(data) as SignInOption[]) : [];
}

export function SignIn({ onSignIn, reason }: { onSignIn: (token: string) => void; reason?: string | undefined }) {
  const [token, setToken] = useState('');
  const offered = offeredSignIns();
  return (
    <section class="sign-in">
      <h1>Content requests</h1>
      {reason && <p class="problem" role="alert">{reason}</p>}
      <form
        onSubmit={(event) => {
          event.preventDefault();
          if (token.trim()) onSignIn(token.trim());
        }}
      >
        <label>
          Bearer token
          <input name="token" autocomplete="off" value={token} onInput={(event) => setToken(event.currentTarget.value)} />
        </label>
        <button type="submit">Sign in</button>
      </form>
      {offered.length > 0 && (
        <>
          <h2>Demo users (development mode)</h2>
          <ul class="demo-users">
            {offered.map((user) => (
              <li key={user.token}>
                <button type="button" data-role={user.role} onClick={() => onSignIn(user.token)}>
                  Sign in as {user.name}
                </button>
              </li>
            ))}
          </ul>
        </>
      )}
    </section>
  );
}
