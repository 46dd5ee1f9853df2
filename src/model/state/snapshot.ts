/**
 * Saving and restoring a differential replay between segments, so that a
 * trace continues exactly from where its last segment left it, across
 * restarts. Findings and outcomes are not state: the caller takes them
 * before saving.
 */
import type { DifferentialReplay } from '../replay/differential.js';
import { decodeGraph, encodeGraph, type EncodedGraph } from './graph-codec.js';
import { MODEL_REGISTRY } from './registry.js';

export function saveReplay(replay: DifferentialReplay): string {
  return JSON.stringify(encodeGraph(replay, MODEL_REGISTRY));
}

export function restoreReplay(text: string): DifferentialReplay {
  return decodeGraph(JSON.parse(text) as EncodedGraph, MODEL_REGISTRY) as DifferentialReplay;
}
