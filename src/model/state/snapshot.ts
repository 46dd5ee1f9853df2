/**
 * Saving and restoring a differential replay between segments, so that a
 * trace continues exactly from where its last segment left it, across
 * restarts, and copying a replay's state in memory (the what-if fork).
 * Findings and outcomes are not state: the caller takes them before saving.
 */
import type { DifferentialReplay } from '../replay/differential.js';
import { decodeGraph, encodeGraph, type EncodedGraph } from './graph-codec.js';
import { modelRegistry } from './registry.js';

export function saveReplay(replay: DifferentialReplay): string {
  return JSON.stringify(encodeGraph(replay, modelRegistry()));
}

export function restoreReplay(text: string): DifferentialReplay {
  return decodeGraph(JSON.parse(text) as EncodedGraph, modelRegistry()) as DifferentialReplay;
}

/** An independent deep copy of a model object graph (shared references and cycles kept). */
export function cloneState<T extends object>(o: T): T {
  const reg = modelRegistry();
  return decodeGraph(encodeGraph(o, reg), reg) as T;
}
