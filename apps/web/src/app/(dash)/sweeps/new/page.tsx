import { load } from '../../../../lib/server';
import { NewSweepForm } from './NewSweepForm';

export default async function NewSweep() {
  const datasets = await load((c) => c.datasets.list.query());
  return (
    <>
      <h1>New sweep</h1>
      <NewSweepForm datasets={datasets.map((d) => ({ name: d.name, uri: d.uri }))} />
    </>
  );
}
