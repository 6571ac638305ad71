/**
 * Pitfall P1 (shared/reference/node-adapter-pitfalls.md): adapters that re-parent or patch framework prototypes
 * change every app in the process. These helpers take a comparable fingerprint of the prototypes that matter.
 */
import http from 'node:http';
import net from 'node:net';
import { EventEmitter } from 'node:events';
import { Duplex, Readable, Writable } from 'node:stream';
import express from 'express';
import express4 from 'express4';

/** The prototypes an adapter could be tempted to touch: Node's HTTP and stream classes, and Express 5's and 4's. */
export const watchedPrototypes = (): [string, object][] => [
  ['http.IncomingMessage.prototype', http.IncomingMessage.prototype],
  ['http.ServerResponse.prototype', http.ServerResponse.prototype],
  ['http.OutgoingMessage.prototype', http.OutgoingMessage.prototype],
  ['http.Server.prototype', http.Server.prototype],
  ['net.Socket.prototype', net.Socket.prototype],
  ['stream.Duplex.prototype', Duplex.prototype],
  ['stream.Readable.prototype', Readable.prototype],
  ['stream.Writable.prototype', Writable.prototype],
  ['EventEmitter.prototype', EventEmitter.prototype],
  ['express.request', express.request],
  ['express.response', express.response],
  ['express4.request', express4.request],
  ['express4.response', express4.response],
];

/** A comparable fingerprint of a prototype: its parent and the identity of every own property's value/get/set. */
export function prototypeFingerprint(proto: object): Map<PropertyKey, unknown> {
  const out = new Map<PropertyKey, unknown>();
  out.set('[[Prototype]]', Object.getPrototypeOf(proto));
  for (const key of Reflect.ownKeys(proto)) {
    const d = Object.getOwnPropertyDescriptor(proto, key) as PropertyDescriptor;
    out.set(key, 'value' in d ? d.value : [d.get, d.set]);
  }
  return out;
}

/** Keys whose value, getter or setter changed (by identity), were added or were removed. */
export function prototypeChanges(before: Map<PropertyKey, unknown>, after: Map<PropertyKey, unknown>): string[] {
  const changed: string[] = [];
  const same = (a: unknown, b: unknown): boolean =>
    Array.isArray(a) && Array.isArray(b) ? Object.is(a[0], b[0]) && Object.is(a[1], b[1]) : Object.is(a, b);
  for (const [key, value] of after) if (!before.has(key) || !same(before.get(key), value)) changed.push(String(key));
  for (const key of before.keys()) if (!after.has(key)) changed.push(`-${String(key)}`);
  return changed;
}

/** Every watched prototype's fingerprint now; `changes()` later lists what moved, per prototype (empty when none). */
export function snapshotPrototypes(): { changes(): { name: string; changes: string[] }[] } {
  const before = watchedPrototypes().map(([name, proto]) => [name, prototypeFingerprint(proto)] as const);
  return {
    changes: () =>
      before.map(([name, print]) => ({ name, changes: prototypeChanges(print, prototypeFingerprint(watchedPrototypes().find(([n]) => n === name)?.[1] as object)) })),
  };
}
