import Link from 'next/link';
import { Age } from '../../../components/Age';
import { load } from '../../../lib/server';

export default async function Trainers() {
  const trainers = await load((c) => c.trainers.list.query());
  return (
    <>
      <h1>Trainers</h1>
      {trainers.length === 0 ? (
        <p className="muted">
          No trainer has registered yet. Start one with a trainer token (<code>tokens.create</code>, role
          trainer): <code>HEADBENCH_TOKEN=… npx headbench-trainer --api {'<this API>'}</code>.
        </p>
      ) : (
        <div className="table-wrap">
          <table aria-label="Trainers">
            <thead>
              <tr>
                <th>name</th>
                <th>host</th>
                <th>backend</th>
                <th>devices</th>
                <th className="num">slots used / free</th>
                <th>current runs</th>
                <th>last heartbeat</th>
                <th>state</th>
              </tr>
            </thead>
            <tbody>
              {trainers.map((t) => {
                const devices = Array.isArray(t.devices)
                  ? (t.devices as { kind: string; name: string }[])
                  : [];
                const used = t.runningRunIds.length;
                return (
                  <tr key={t.id}>
                    <td>{t.name}</td>
                    <td>{t.host ?? '—'}</td>
                    <td>{t.backend ?? '—'}</td>
                    <td>{devices.length ? devices.map((d) => `${d.kind}:${d.name}`).join(', ') : '—'}</td>
                    <td className="num">
                      {used} / {Math.max(0, t.slots - used)}
                    </td>
                    <td>
                      {t.runningRunIds.length
                        ? t.runningRunIds.map((id) => (
                            <Link key={id} href={`/runs/${id}`} style={{ marginRight: 6 }}>
                              {id.slice(0, 8)}
                            </Link>
                          ))
                        : '—'}
                    </td>
                    <td>{t.lastHeartbeat ? <Age iso={t.lastHeartbeat} /> : 'never'}</td>
                    <td>
                      <span className={`status ${t.state}`}>{t.state}</span>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}
