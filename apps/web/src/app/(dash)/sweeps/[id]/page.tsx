import { notFound } from 'next/navigation';
import { publicApiUrl } from '../../../../lib/config';
import { load } from '../../../../lib/server';
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
  return (
    <SweepView
      sweep={sweep}
      initialRuns={runs}
      trainers={Object.fromEntries(trainers.map((t) => [t.id, t.name]))}
      apiUrl={publicApiUrl()}
    />
  );
}
