import { notFound } from 'next/navigation';
import { publicApiUrl } from '../../../../lib/config';
import { load } from '../../../../lib/server';
import { RunView } from './RunView';

export default async function RunPage({ params }: { params: Promise<{ id: string }> }) {
  const { id } = await params;
  if (!/^[0-9a-f-]{36}$/i.test(id)) notFound();
  const [run, trainers, datasets] = await load((c) =>
    Promise.all([c.runs.get.query({ id }), c.trainers.list.query(), c.datasets.list.query()]),
  );
  const classes = datasets.find((d) => d.uri === run.config.dataset)?.classes ?? [];
  return (
    <RunView
      run={run}
      classes={classes}
      trainers={Object.fromEntries(trainers.map((t) => [t.id, t.name]))}
      apiUrl={publicApiUrl()}
    />
  );
}
