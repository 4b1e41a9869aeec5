'use client';
import { PACKAGED_WEIGHTS } from '@headbench/spec';
import { TRPCClientError } from '@trpc/client';
import { useRouter } from 'next/navigation';
import { type FormEvent, useCallback, useEffect, useRef, useState } from 'react';
import { browserApi, download } from '../../../../lib/browser';

const list = (s: string) =>
  s
    .split(/[\s,]+/)
    .map((x) => x.trim())
    .filter(Boolean);
const num = (s: string) => (s.trim() === '' ? undefined : Number(s));

/** The sweep spec (as @headbench/spec's SweepSpec takes it) that the form's fields describe. */
function specOf(form: HTMLFormElement): Record<string, unknown> {
  const f = new FormData(form);
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
  return spec;
}

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
  const [specText, setSpecText] = useState('');
  const [frozenWithoutWeights, setFrozenWithoutWeights] = useState(false);
  const formRef = useRef<HTMLFormElement>(null);
  // The spec view and the warning follow the fields: once with the defaults, then on every change.
  const refresh = useCallback((form: HTMLFormElement) => {
    const spec = specOf(form);
    setSpecText(JSON.stringify(spec, null, 2));
    const weights = (spec.weights as string[] | undefined) ?? [];
    setFrozenWithoutWeights(spec.trainable === 'frozen' && weights.every((w) => w === 'none'));
  }, []);
  useEffect(() => {
    if (formRef.current) refresh(formRef.current);
  }, [refresh]);
  const err = (field: string) =>
    errors[field]?.length ? (
      <div className="field-error" role="alert" data-field={field}>
        {errors[field].join('; ')}
      </div>
    ) : null;

  async function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const spec = specOf(e.currentTarget);
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
    <form
      ref={formRef}
      className="stack"
      onSubmit={submit}
      onChange={(e) => refresh(e.currentTarget)}
      noValidate
      aria-label="New sweep"
    >
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
          defaultValue="generated:flowers17?size=64&perClass=32"
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
        <Checks name="backbones" options={props.backbones} defaults={['smallcnn']} />
        {err('backbones')}
      </fieldset>
      <label>
        Weights{' '}
        <input
          type="text"
          name="weights"
          list="known-weights"
          defaultValue="none"
          aria-label="Weights"
          size={30}
        />
      </label>
      <datalist id="known-weights">
        <option value="none">random initialisation</option>
        {PACKAGED_WEIGHTS.map((w) => (
          <option key={w.ref} value={w.ref}>
            pretrained {w.backbone} at {w.size} px ({w.package} {w.version})
          </option>
        ))}
      </datalist>
      <p className="hint" data-hint="packaged-weights">
        Pretrained, installed with headbench:{' '}
        {PACKAGED_WEIGHTS.map((w, i) => (
          <span key={w.ref}>
            {i > 0 ? ', ' : ''}
            <code>{w.ref}</code> ({w.backbone}, {w.size} px)
          </span>
        ))}
        . ImageNet-initialised and fine-tuned by the {PACKAGED_WEIGHTS[0].package} authors on their own
        images.
      </p>
      {err('weights')}
      <fieldset>
        <legend>Heads</legend>
        <Checks name="heads" options={props.heads} defaults={['fc', 'gap', 'gmp']} />
        {err('heads')}
      </fieldset>
      <fieldset>
        <legend>Optimizer</legend>
        <Checks name="optimizers" options={props.optimizers} defaults={['adam']} />
        {err('optimizers')}
        <div className="controls">
          <label>
            Learning rate{' '}
            <input type="number" name="lr" step="any" defaultValue="0.001" aria-label="Learning rate" />
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
          Size <input type="number" name="size" defaultValue="32" aria-label="Input size" />
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
        <input type="text" name="trainable" defaultValue="all" aria-label="Trainable" />
      </label>
      {err('trainable')}
      {frozenWithoutWeights && (
        <div className="banner warn" role="status" data-warning="frozen-without-weights">
          The backbone is frozen and has no weights (weights: none): its features are random, so the heads
          compare nothing the reference experiment measured. Give weights (a tfjs model,
          npm:&lt;package&gt;/&lt;model&gt; or run:&lt;id&gt;) or train the backbone (trainable all or a
          number of blocks).
        </div>
      )}
      <details>
        <summary>Spec this form submits</summary>
        <pre data-spec>{specText}</pre>
        <div className="controls">
          <button type="button" onClick={() => void navigator.clipboard?.writeText(specText)}>
            Copy
          </button>
          <button type="button" onClick={() => download('sweep.json', specText, 'application/json')}>
            Download sweep.json
          </button>
          <span className="muted">
            Run it here with <code>headbench compare --spec sweep.json</code>, or send it with{' '}
            <code>headbench submit sweep.json --api …</code>.
          </span>
        </div>
      </details>
      <div>
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Creating…' : 'Create sweep'}
        </button>
      </div>
    </form>
  );
}
