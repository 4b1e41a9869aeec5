import { notFound } from 'next/navigation';
import { publicApiUrl } from '../../../../lib/config';
import { load, sessionToken } from '../../../../lib/server';
import { SweepView } from './SweepView';

export default async function SweepPage({ params }: { params: Promise<{ id: string }> }) {
  const { id } = await params;
  if (!/^[0-9a-f-]{36}$/i.test(id)) notFound();
  const [sweep, runs, trainers] = await load((c) =>
    Promise.all([
      c.sweeps.get.query({ id }),
      c.runs.list.query({ sweepId: id, limit: 1000 }),
      c.trainers.list.query(),
    ]),
  );
  // The browser's socket.io connection to the API needs the token; it is handed only to this page's script.
  const token = (await sessionToken())!;
  return (
    <SweepView
      sweep={sweep}
      initialRuns={runs}
      trainers={Object.fromEntries(trainers.map((t) => [t.id, t.name]))}
      apiUrl={publicApiUrl()}
      token={token}
    />
  );
}
