import type { Database } from '../store/database';
import type { PointerPolicy } from './policy';
import { allowAllPolicy } from './policy';

/** The network's sharing policy. Until consent and agreements are enforced, every reader sees every pointer. */
export function networkPolicy(_db: Database): PointerPolicy {
  return allowAllPolicy;
}
