/**
 * How faithfully a head's class activation map decomposes its class score (Zhou et al. 2016):
 * - `exact`: the score is the spatial mean of the map (plus a bias), so the map shows where the score comes
 *   from — gap (M_c = Σ_k w_kc·f_k), nin (the class's own 1×1-conv map) and gem when the map is drawn on f^p,
 *   the quantity GeM averages before its root;
 * - `approximate`: gmp, avgmax and catavgmax pool by a maximum, so the map only suggests where the score is;
 * - `none`: fc flattens positions into a dense layer; no map is defined.
 */
export type CamFidelity = 'exact' | 'approximate' | 'none';

const EXACT = new Set(['gap', 'nin', 'gem']);
const APPROXIMATE = new Set(['gmp', 'avgmax', 'catavgmax']);

export function camFidelity(head: string): CamFidelity {
  if (EXACT.has(head)) return 'exact';
  if (APPROXIMATE.has(head)) return 'approximate';
  return 'none';
}

/** Caption word for figures, the report and the dashboard. */
export function camLabel(head: string): string {
  const f = camFidelity(head);
  if (head === 'gem')
    return 'class activation maps (exact on f^p, the quantity GeM averages before its root)';
  return f === 'exact'
    ? "class activation maps (exact: the class score is the map's mean plus a bias)"
    : f === 'approximate'
      ? 'class activation maps (approximate: max pooling does not decompose the class score)'
      : 'no class activation maps';
}
