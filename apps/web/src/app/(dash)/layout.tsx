import Link from 'next/link';
import type { ReactNode } from 'react';
import { load } from '../../lib/server';

export const dynamic = 'force-dynamic';

export default async function DashLayout({ children }: { children: ReactNode }) {
  // Also the sign-in gate: no cookie or a rejected token redirects to /signin.
  const me = await load((c) => c.whoami.query());
  return (
    <>
      <header className="nav">
        <span className="brand">headbench</span>
        <Link href="/sweeps">Sweeps</Link>
        <Link href="/sweeps/new">New sweep</Link>
        <Link href="/trainers">Trainers</Link>
        <span className="spacer" />
        <span className="muted" data-testid="whoami">
          {me.name} ({me.role})
        </span>
        <form method="post" action="/auth/signout">
          <button type="submit">Sign out</button>
        </form>
      </header>
      <main>{children}</main>
    </>
  );
}
