/**
 * Where a line that JSON.parse refused goes wrong, as a 1-based column, so
 * the message can say `not JSON (at column N)` without quoting the line
 * (V8's messages quote it: "Unexpected token 'r', "root:$y$j9"..."). An
 * iterative scan of the JSON grammar (no recursion: a line may nest deeply).
 */
const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const HEX4 = /^[0-9a-fA-F]{4}$/;

export function jsonErrorColumn(s: string): number {
  const n = s.length;
  let i = 0;
  const stack: ('{' | '[')[] = [];
  const ws = () => {
    while (i < n && (s[i] === ' ' || s[i] === '\t' || s[i] === '\n' || s[i] === '\r')) i++;
  };
  /** A string at i; false (i at the fault) when it is not one. */
  const string = (): boolean => {
    if (s[i] !== '"') return false;
    i++;
    while (i < n) {
      const c = s.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return true;
      }
      if (c < 0x20) return false;
      if (c === 0x5c) {
        const e = s[i + 1];
        if (e === 'u') {
          if (!HEX4.test(s.slice(i + 2, i + 6))) return false;
          i += 6;
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) i += 2;
        else return false;
      } else i++;
    }
    return false;
  };
  const key = (): boolean => {
    ws();
    if (!string()) return false;
    ws();
    if (s[i] !== ':') return false;
    i++;
    return true;
  };
  for (;;) {
    // A value at i.
    ws();
    const c = s[i];
    if (c === '{' || c === '[') {
      i++;
      ws();
      if (s[i] === (c === '{' ? '}' : ']')) i++;
      else {
        stack.push(c);
        if (c === '{' && !key()) return i + 1;
        continue;
      }
    } else if (c === '"') {
      if (!string()) return i + 1;
    } else if (s.startsWith('true', i) || s.startsWith('null', i)) i += 4;
    else if (s.startsWith('false', i)) i += 5;
    else {
      NUMBER.lastIndex = i;
      if (!NUMBER.test(s)) return i + 1;
      i = NUMBER.lastIndex;
    }
    // After a value: a comma, the end of its container, or the end of the line.
    for (;;) {
      ws();
      const top = stack[stack.length - 1];
      if (top === undefined) return i < n ? i + 1 : 0;
      if (s[i] === ',') {
        i++;
        if (top === '{' && !key()) return i + 1;
        break;
      }
      if (s[i] !== (top === '{' ? '}' : ']')) return i + 1;
      stack.pop();
      i++;
    }
  }
}
