'use client';
import { TRPCClientError } from '@trpc/client';
import { useRouter } from 'next/navigation';
import { type FormEvent, useState } from 'react';
import { browserApi } from '../../../../lib/browser';

const list = (s: string) =>
  s
    .split(/[\s,]+/)
    .map((x) => x.trim())
    .filter(Boolean);
const num = (s: string) => (s.trim() === '' ? undefined : Number(s));

function Checks({ name, options, defaults }: { name: string; options: string[]; defaults: string[] }) {
  return (
    <>
      {options.map((o) => (
        <label key={o} style={{ marginRight: 12 }}>
          <input type="checkbox" name={name} value={o} defaultChecked={defaults.includes(o)} /> {o}
        </label>
      ))}
    </>
  );
}

export function NewSweepForm(props: {
  datasets: { name: string; uri: string }[];
  backbones: string[];
  heads: string[];
  optimizers: string[];
}) {
  const { datasets } = props;
  const router = useRouter();
  const [errors, setErrors] = useState<Record<string, string[]>>({});
  const [general, setGeneral] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const err = (field: string) =>
    errors[field]?.length ? (
      <div className="field-error" role="alert" data-field={field}>
        {errors[field].join('; ')}
      </div>
    ) : null;

  async function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    const s = (k: string) => String(f.get(k) ?? '');
    const trainableRaw = s('trainable');
    const spec: Record<string, unknown> = {
      name: s('name'),
      datasets: list(s('datasets')),
      backbones: f.getAll('backbones').map(String),
      weights: list(s('weights')),
      heads: f.getAll('heads').map(String),
      optimizers: f.getAll('optimizers').map(String),
      lr: num(s('lr')),
      epochs: num(s('epochs')),
      batchSize: num(s('batchSize')),
      size: num(s('size')),
      seeds: list(s('seeds')).map(Number),
      trainable: /^\d+$/.test(trainableRaw) ? Number(trainableRaw) : trainableRaw,
    };
    if (s('momentum')) spec.momentum = num(s('momentum'));
    if (s('decay')) spec.decay = num(s('decay'));
    setBusy(true);
    setErrors({});
    setGeneral(null);
    try {
      const res = await browserApi().sweeps.create.mutate(spec as never);
      router.push(`/sweeps/${res.id}`);
    } catch (e) {
      // The API names each invalid field (path + message): show them next to their inputs.
      const issues =
        e instanceof TRPCClientError
          ? (e.data?.issues as { path: string; message: string }[] | undefined)
          : undefined;
      if (issues?.length) {
        const by: Record<string, string[]> = {};
        for (const i of issues) {
          const field = i.path.split('.')[0] || '(form)';
          by[field] = [...(by[field] ?? []), i.message];
        }
        setErrors(by);
        if (by['(form)']) setGeneral(by['(form)'].join('; '));
      } else setGeneral(e instanceof Error ? e.message : String(e));
      setBusy(false);
    }
  }

  return (
    <form className="stack" onSubmit={submit} noValidate aria-label="New sweep">
      {general && (
        <div className="banner err" role="alert">
          {general}
        </div>
      )}
      <label>
        Name <input type="text" name="name" defaultValue="heads" aria-label="Name" />
      </label>
      {err('name')}
      <label>
        Datasets (URIs, comma separated){' '}
        <input
          type="text"
          name="datasets"
          list="known-datasets"
          defaultValue="generated:flowers17"
          aria-label="Datasets"
          size={50}
        />
      </label>
      <datalist id="known-datasets">
        {datasets.map((d) => (
          <option key={d.name} value={d.uri}>
            {d.name}
          </option>
        ))}
      </datalist>
      {err('datasets')}
      <fieldset>
        <legend>Backbones</legend>
        <Checks name="backbones" options={props.backbones} defaults={['vgg16']} />
        {err('backbones')}
      </fieldset>
      <label>
        Weights <input type="text" name="weights" defaultValue="none" aria-label="Weights" />
      </label>
      {err('weights')}
      <fieldset>
        <legend>Heads</legend>
        <Checks name="heads" options={props.heads} defaults={['fc', 'gap', 'gmp']} />
        {err('heads')}
      </fieldset>
      <fieldset>
        <legend>Optimizer</legend>
        <Checks name="optimizers" options={props.optimizers} defaults={['rmsprop']} />
        {err('optimizers')}
        <div className="controls">
          <label>
            Learning rate{' '}
            <input type="number" name="lr" step="any" defaultValue="0.0001" aria-label="Learning rate" />
          </label>
          <label>
            Decay <input type="number" name="decay" step="any" defaultValue="0" aria-label="Decay" />
          </label>
          <label>
            Momentum <input type="number" name="momentum" step="any" aria-label="Momentum" />
          </label>
        </div>
        {err('lr')}
        {err('decay')}
        {err('momentum')}
      </fieldset>
      <div className="controls">
        <label>
          Epochs <input type="number" name="epochs" defaultValue="20" aria-label="Epochs" />
        </label>
        <label>
          Batch <input type="number" name="batchSize" defaultValue="32" aria-label="Batch size" />
        </label>
        <label>
          Size <input type="number" name="size" defaultValue="224" aria-label="Input size" />
        </label>
      </div>
      {err('epochs')}
      {err('batchSize')}
      {err('size')}
      <label>
        Seeds <input type="text" name="seeds" defaultValue="0, 1, 2" aria-label="Seeds" />
      </label>
      {err('seeds')}
      <label>
        Trainable (frozen, all, or last N blocks){' '}
        <input type="text" name="trainable" defaultValue="frozen" aria-label="Trainable" />
      </label>
      {err('trainable')}
      <div>
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Creating…' : 'Create sweep'}
        </button>
      </div>
    </form>
  );
}
