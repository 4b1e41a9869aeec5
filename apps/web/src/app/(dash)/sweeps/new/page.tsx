import { load } from '../../../../lib/server';
import { NewSweepForm } from './NewSweepForm';

export default async function NewSweep() {
  // Option lists come from the API (meta.names), so the form offers exactly what the API accepts.
  const [datasets, names] = await load((c) => Promise.all([c.datasets.list.query(), c.meta.names.query()]));
  return (
    <>
      <h1>New sweep</h1>
      <NewSweepForm
        datasets={datasets.map((d) => ({ name: d.name, uri: d.uri }))}
        backbones={names.backbones}
        heads={names.heads}
        optimizers={names.optimizers}
      />
    </>
  );
}
