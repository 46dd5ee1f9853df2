/**
 * Turns a model object graph into JSON and back, exactly: bigints, Maps,
 * Sets, shared references and cycles survive, and instances of registered
 * classes come back with their prototype. Objects with behaviour that are
 * not state (drivers, policies) are registered as externals and saved by
 * name. A class whose fields are not plain state (an index built on a
 * library's tree) registers its own save and load. Anything unregistered is
 * refused, so state can never be saved half-way.
 */
type Ctor = abstract new (...args: never[]) => object;

/** How a class with its own encoding turns into plain state and back. */
export interface CustomCodec<T extends object, D> {
  save(o: T): D;
  load(d: D): T;
}

type AnyCodec = CustomCodec<object, unknown>;

export class GraphRegistry {
  private readonly byName = new Map<string, Ctor>();
  private readonly byProto = new Map<object, string>();
  private readonly externals = new Map<string, object>();
  private readonly externalNames = new Map<object, string>();
  private readonly codecs = new Map<string, AnyCodec>();

  cls(name: string, ctor: Ctor): this {
    this.byName.set(name, ctor);
    this.byProto.set(ctor.prototype as object, name);
    return this;
  }

  custom<T extends object, D>(name: string, ctor: abstract new (...args: never[]) => T, codec: CustomCodec<T, D>): this {
    this.codecs.set(name, codec as unknown as AnyCodec);
    return this.cls(name, ctor);
  }

  codec(name: string): AnyCodec | undefined {
    return this.codecs.get(name);
  }

  external(name: string, value: object): this {
    this.externals.set(name, value);
    this.externalNames.set(value, name);
    return this;
  }

  nameOfProto(proto: object | null): string | undefined {
    return proto ? this.byProto.get(proto) : undefined;
  }

  ctor(name: string): Ctor | undefined {
    return this.byName.get(name);
  }

  externalName(v: object): string | undefined {
    return this.externalNames.get(v);
  }

  externalValue(name: string): object | undefined {
    return this.externals.get(name);
  }
}

type Encoded = null | boolean | number | string | { $r: number } | { $b: string } | { $u: 1 };

type Node =
  | { k: 'o'; c?: string; f: Record<string, Encoded> }
  | { k: 'a'; v: Encoded[] }
  | { k: 'm'; v: [Encoded, Encoded][] }
  | { k: 's'; v: Encoded[] }
  | { k: 'x'; n: string }
  | { k: 'c'; c: string; v: Encoded };

export interface EncodedGraph {
  root: Encoded;
  nodes: Node[];
}

export function encodeGraph(root: unknown, reg: GraphRegistry): EncodedGraph {
  const ids = new Map<object, number>();
  const nodes: Node[] = [];

  const enc = (v: unknown, path: string): Encoded => {
    if (v === null || typeof v === 'boolean' || typeof v === 'number' || typeof v === 'string') return v;
    if (v === undefined) return { $u: 1 };
    if (typeof v === 'bigint') return { $b: v.toString(16) };
    if (typeof v !== 'object' && typeof v !== 'function') throw new Error(`Cannot save state: ${path} is a ${typeof v}`);
    const o = v as object;
    const known = ids.get(o);
    if (known !== undefined) return { $r: known };
    const id = nodes.length;
    ids.set(o, id);
    const ext = reg.externalName(o);
    if (ext !== undefined) {
      nodes.push({ k: 'x', n: ext });
      return { $r: id };
    }
    if (typeof o === 'function') throw new Error(`Cannot save state: ${path} is a function that is not registered`);
    if (Array.isArray(o)) {
      const node: Node = { k: 'a', v: [] };
      nodes.push(node);
      o.forEach((x, i) => node.v.push(enc(x, `${path}[${i}]`)));
      return { $r: id };
    }
    if (o instanceof Map) {
      const node: Node = { k: 'm', v: [] };
      nodes.push(node);
      for (const [k, x] of o) node.v.push([enc(k, `${path}.key`), enc(x, `${path}.value`)]);
      return { $r: id };
    }
    if (o instanceof Set) {
      const node: Node = { k: 's', v: [] };
      nodes.push(node);
      for (const x of o) node.v.push(enc(x, `${path}.item`));
      return { $r: id };
    }
    const proto = Object.getPrototypeOf(o) as object | null;
    const node: Node = { k: 'o', f: {} };
    if (proto !== Object.prototype && proto !== null) {
      const name = reg.nameOfProto(proto);
      if (!name) throw new Error(`Cannot save state: ${path} is an instance of unregistered class ${(proto.constructor as { name?: string }).name}`);
      const codec = reg.codec(name);
      if (codec) {
        const custom: Node = { k: 'c', c: name, v: null };
        nodes.push(custom);
        custom.v = enc(codec.save(o), `${path}.saved`);
        return { $r: id };
      }
      node.c = name;
    }
    nodes.push(node);
    for (const [k, x] of Object.entries(o)) if (x !== undefined) node.f[k] = enc(x, `${path}.${k}`);
    return { $r: id };
  };

  const encodedRoot = enc(root, 'state');
  return { root: encodedRoot, nodes };
}

export function decodeGraph(g: EncodedGraph, reg: GraphRegistry): unknown {
  const shells: unknown[] = g.nodes.map((n) => {
    switch (n.k) {
      case 'a':
        return [];
      case 'm':
        return new Map();
      case 's':
        return new Set();
      case 'x': {
        const v = reg.externalValue(n.n);
        if (!v) throw new Error(`Cannot restore state: unknown external ${n.n}`);
        return v;
      }
      case 'c':
      case 'o': {
        if (!n.c) return {};
        const ctor = reg.ctor(n.c);
        if (!ctor) throw new Error(`Cannot restore state: unknown class ${n.c}`);
        return Object.create(ctor.prototype as object) as object;
      }
    }
  });
  const dec = (e: Encoded): unknown => {
    if (e === null || typeof e !== 'object') return e;
    if ('$r' in e) return shells[e.$r];
    if ('$b' in e) return BigInt('0x' + e.$b.replace('-', '')) * (e.$b.startsWith('-') ? -1n : 1n);
    return undefined;
  };
  g.nodes.forEach((n, i) => {
    const s = shells[i];
    switch (n.k) {
      case 'a':
        for (const x of n.v) (s as unknown[]).push(dec(x));
        break;
      case 'm':
        for (const [k, x] of n.v) (s as Map<unknown, unknown>).set(dec(k), dec(x));
        break;
      case 's':
        for (const x of n.v) (s as Set<unknown>).add(dec(x));
        break;
      case 'o':
        for (const [k, x] of Object.entries(n.f)) (s as Record<string, unknown>)[k] = dec(x);
        break;
      case 'x':
      case 'c':
        break;
    }
  });
  // Custom-encoded objects last, innermost first, once their saved state is whole.
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const n = g.nodes[i]!;
    if (n.k !== 'c') continue;
    const codec = reg.codec(n.c);
    if (!codec) throw new Error(`Cannot restore state: unknown class ${n.c}`);
    Object.assign(shells[i] as object, codec.load(dec(n.v)));
  }
  return dec(g.root);
}
