const MESSAGES: Record<string, string> = {
  missing: 'Enter a token.',
  invalid: 'That token was not accepted by the API.',
  expired: 'Your session ended (the token was revoked or is no longer valid). Sign in again.',
  api: 'The API cannot be reached right now. Try again in a moment.',
};

export default async function SignIn({
  searchParams,
}: {
  searchParams: Promise<Record<string, string | undefined>>;
}) {
  const { error, next } = await searchParams;
  return (
    <main>
      <div className="signin">
        <h1>Sign in to headbench</h1>
        <p className="muted">
          Use an API token (admin or member). Ask an admin for one, or use the admin token the API printed at
          its first start.
        </p>
        {error && (
          <p role="alert" className="error">
            {MESSAGES[error] ?? 'Sign-in failed.'}
          </p>
        )}
        <form method="post" action="/auth/signin" className="stack">
          <label>
            Token{' '}
            <input
              type="password"
              name="token"
              autoComplete="off"
              required
              aria-label="API token"
              style={{ width: '100%' }}
            />
          </label>
          <input type="hidden" name="next" value={next ?? '/sweeps'} />
          <button type="submit" className="primary">
            Sign in
          </button>
        </form>
      </div>
    </main>
  );
}
