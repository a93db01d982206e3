import { getMetadataStorage } from 'class-validator';

type Metadata = { propertyName: string };
interface Storage {
  getTargetValidationMetadatas(
    target: unknown,
    schema: string,
    always: boolean,
    strictGroups: boolean,
    groups?: string[],
  ): Metadata[];
  groupByPropertyName(metadata: Metadata[]): Record<string, Metadata[]>;
  addValidationMetadata(metadata: unknown): void;
  addConstraintMetadata(metadata: unknown): void;
  __taskhubCached?: boolean;
}

/**
 * class-validator recomputes a class's rules on every validate call: it filters its metadata and
 * walks every registered class to find parents (a profile of W1 put class-validator at 15 % of the
 * hub's CPU, a fifth of it in this lookup). The rules only change when a decorator registers one,
 * so the lookup and its grouping are memoised and forgotten on any registration.
 * The executor never mutates what these return (class-validator 0.15).
 */
export function cacheValidationMetadata(): void {
  const storage = getMetadataStorage() as unknown as Storage;
  if (storage.__taskhubCached) return;
  storage.__taskhubCached = true;
  const lookup = storage.getTargetValidationMetadatas.bind(storage);
  const group = storage.groupByPropertyName.bind(storage);
  let targets = new Map<unknown, Map<string, Metadata[]>>();
  let grouped = new WeakMap<Metadata[], Record<string, Metadata[]>>();
  storage.getTargetValidationMetadatas = (target, schema, always, strictGroups, groups) => {
    const key = `${schema}\u0000${always}\u0000${strictGroups}\u0000${groups?.join('\u0000') ?? ''}`;
    let byKey = targets.get(target);
    if (!byKey) targets.set(target, (byKey = new Map()));
    let found = byKey.get(key);
    if (!found) byKey.set(key, (found = lookup(target, schema, always, strictGroups, groups)));
    return found;
  };
  storage.groupByPropertyName = (metadata) => {
    let found = grouped.get(metadata);
    if (!found) grouped.set(metadata, (found = group(metadata)));
    return found;
  };
  for (const name of ['addValidationMetadata', 'addConstraintMetadata'] as const) {
    const add = storage[name].bind(storage);
    storage[name] = (metadata: unknown) => {
      targets = new Map();
      grouped = new WeakMap();
      add(metadata);
    };
  }
}
