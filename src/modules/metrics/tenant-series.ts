/** A label value as the Prometheus text format writes it (backslash, double quote and newline escaped). */
const escapeLabelValue = (v: string): string => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

/**
 * The process series one tenant may see (docs/security.md): every sample that carries a
 * `tenant` label of another tenant is dropped; samples without a `tenant` label stay. Label
 * values are quoted with `"` escaped, so `{tenant="x"` or `,tenant="x"` only ever starts a
 * label, never sits inside another label's value.
 */
export function onlyTenantSeries(text: string, tenant: string): string {
  const own = `tenant="${escapeLabelValue(tenant)}"`;
  return text
    .split('\n')
    .filter((line) => {
      if (line.startsWith('#')) return true;
      const brace = line.indexOf('{');
      if (brace < 0) return true;
      const at = line.indexOf('tenant="', brace);
      if (at < 0) return true;
      const before = line[at - 1];
      if (before !== '{' && before !== ',') return true; // e.g. a `subtenant` label: not ours to judge
      return line.startsWith(own, at);
    })
    .join('\n');
}
