/**
 * The trusted code that prepares a fresh isolated-vm context once, before any script runs in it.
 *
 * Isolation between runs without a new context per run (a context costs ~1 ms; a warm run a few
 * microseconds) rests on three moves:
 *
 * 1. Everything reachable from `globalThis` — and the intrinsics reachable only through syntax
 *    (generator, async and iterator prototypes, %TypedArray%, …) — is deep-frozen. No run can
 *    add a global, patch a built-in or a prototype; the attempt throws (scripts run in strict
 *    mode). Capabilities that could let a run outlive itself or block the thread are removed
 *    first: SharedArrayBuffer, Atomics, WebAssembly, WeakRef, FinalizationRegistry (and V8's inert
 *    `console`, so that a script calling it fails loudly instead of printing nowhere), and so are
 *    RegExp's legacy statics (`RegExp.$1`, `RegExp.input`, …), which would show one run the last
 *    match of another. There are no timers in a bare V8 context, and microtasks drain before a
 *    run returns.
 * 2. Each script is a strict-mode direct `eval` inside a function created by the Function
 *    constructor, so its scope chain is only its parameters — the per-run globals
 *    (`CALLER_PUBLIC_KEY`, `print`, …) — and the frozen global object. Its `var`, `let`,
 *    `function` and `class` declarations live and die with the eval.
 * 3. The per-run functions (`print`, `load_data`, …) are fresh closures carrying the run's id; the
 *    host refuses calls whose id is not the running one, so nothing a run leaves behind can act
 *    in a later run.
 *
 * Freezing has one well-known cost, the "override mistake": assigning `obj.toString = …` on an
 * object that inherits a frozen `toString` would throw. The properties commonly assigned that way
 * are turned into accessors whose setter defines an own property on the receiver instead (the
 * approach of SES "enablements").
 *
 * The source below is evaluated as a function expression and called with the host callback and
 * the run limits; it returns `{ run, settle }`.
 */
export const ISOLATE_BOOTSTRAP = String.raw`(function bootstrap(hostCall, maxLogBytes, maxOutputBytes) {
  'use strict';
  const g = globalThis;
  for (const name of ['SharedArrayBuffer', 'Atomics', 'WebAssembly', 'WeakRef', 'FinalizationRegistry', 'console']) {
    delete g[name];
  }
  const { freeze, getPrototypeOf, getOwnPropertyDescriptor, defineProperty } = Object;
  const ownKeys = Reflect.ownKeys;
  // RegExp's legacy statics (RegExp.$1, RegExp.input, …) expose the last match of whatever ran
  // before: freezing does not stop the engine from updating them, so they go.
  for (const key of ownKeys(RegExp)) {
    if (typeof key === 'string' && /^(\$.*|input|lastMatch|lastParen|leftContext|rightContext)$/.test(key)) {
      delete RegExp[key];
    }
  }
  const apply = Reflect.apply;
  const stringify = JSON.stringify;
  const parse = JSON.parse;
  const NativePromise = Promise;
  const promiseThen = Promise.prototype.then;
  const NativeString = String;
  const NativeError = Error;
  const weakMapGet = WeakMap.prototype.get;
  const weakMapSet = WeakMap.prototype.set;
  const arrayPush = Array.prototype.push;
  const stringSlice = String.prototype.slice;
  const stringIndexOf = String.prototype.indexOf;

  function enable(obj, key) {
    const desc = getOwnPropertyDescriptor(obj, key);
    if (!desc || !('value' in desc) || !desc.configurable) return;
    const value = desc.value;
    defineProperty(obj, key, {
      get() { return value; },
      set(next) {
        if (this === obj) throw new TypeError('Cannot assign to read only property ' + NativeString(key));
        defineProperty(this, key, { value: next, writable: true, enumerable: true, configurable: true });
      },
      enumerable: desc.enumerable,
      configurable: false,
    });
  }
  const errorCtors = [Error, EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError, AggregateError];
  for (const key of ['constructor', 'toString', 'valueOf', 'toLocaleString', 'hasOwnProperty', 'isPrototypeOf', 'propertyIsEnumerable']) {
    enable(Object.prototype, key);
  }
  for (const key of ['constructor', 'toString']) enable(Function.prototype, key);
  for (const Ctor of errorCtors) for (const key of ['constructor', 'name', 'message', 'toString']) enable(Ctor.prototype, key);
  for (const key of ['constructor', 'toString', 'push', 'join']) enable(Array.prototype, key);

  const roots = [
    g,
    getPrototypeOf(function* () {}),
    getPrototypeOf(async function () {}),
    getPrototypeOf(async function* () {}),
    getPrototypeOf((function* () {})()),
    getPrototypeOf((async function* () {})()),
    getPrototypeOf([][Symbol.iterator]()),
    getPrototypeOf(new Map()[Symbol.iterator]()),
    getPrototypeOf(new Set()[Symbol.iterator]()),
    getPrototypeOf(''[Symbol.iterator]()),
    getPrototypeOf(/a/[Symbol.matchAll]('a')),
    (function () { return arguments; })(),
  ];
  if (typeof Intl === 'object' && typeof Intl.Segmenter === 'function') {
    const segments = new Intl.Segmenter().segment('a');
    roots.push(getPrototypeOf(segments), getPrototypeOf(segments[Symbol.iterator]()));
  }
  const frozen = new WeakSet();
  const stack = roots;
  while (stack.length > 0) {
    const obj = stack.pop();
    if ((typeof obj !== 'object' && typeof obj !== 'function') || obj === null || frozen.has(obj)) continue;
    frozen.add(obj);
    freeze(obj);
    stack.push(getPrototypeOf(obj));
    for (const key of ownKeys(obj)) {
      const desc = getOwnPropertyDescriptor(obj, key);
      if (desc === undefined) continue;
      if ('value' in desc) stack.push(desc.value);
      else stack.push(desc.get, desc.set);
    }
  }

  const evaluate = new Function(
    'CALLER_PUBLIC_KEY', 'CIRCLE_PUBLIC_KEY', 'DB_PATH',
    'print', 'load_data', 'save_data', 'list_data', 'delete_data',
    "'use strict'; return eval(arguments[8]);",
  );

  const hostCodes = new WeakMap();
  function hostError(code, message) {
    const error = new NativeError(message);
    defineProperty(error, 'code', { value: code, enumerable: true });
    apply(weakMapSet, hostCodes, [error, code]);
    return error;
  }

  function describe(error) {
    try {
      if (error !== null && typeof error === 'object') {
        const message = error.message;
        const name = error.name;
        if (typeof message === 'string') {
          return (typeof name === 'string' && name !== '' ? name + ': ' : '') + message;
        }
      }
      return NativeString(error);
    } catch (_) {
      return 'uncaught exception that cannot be printed';
    }
  }

  function toLine(args) {
    let line = '';
    for (let i = 0; i < args.length; i++) {
      const arg = args[i];
      let text;
      if (typeof arg === 'string') text = arg;
      else {
        try { text = stringify(arg); } catch (_) { text = undefined; }
        if (text === undefined) text = NativeString(arg);
      }
      line += (i === 0 ? '' : ' ') + text;
    }
    return line;
  }

  function errorResult(code, message, state) {
    return ['E', code, apply(stringSlice, message, [0, 2000]), state.logs, state.truncated];
  }

  function failure(error, state) {
    const code = (error !== null && typeof error === 'object') ? apply(weakMapGet, hostCodes, [error]) : undefined;
    if (code === undefined) return errorResult('SCRIPT_ERROR', describe(error), state);
    // An uncaught storage error keeps its own code and message (no "Error: " prefix).
    let message;
    try { message = error.message; } catch (_) { message = undefined; }
    return errorResult(code, typeof message === 'string' ? message : describe(error), state);
  }

  function success(value, state) {
    let json;
    let output = null;
    if (typeof value === 'string') {
      output = value;
      json = stringify(value);
    } else if (typeof value === 'bigint') {
      output = NativeString(value);
      json = stringify(output);
    } else {
      try {
        json = stringify(value);
      } catch (error) {
        return errorResult('OUTPUT_TOO_LARGE', 'The result is not JSON-serialisable: ' + describe(error), state);
      }
      if (json === undefined) {
        output = '';
        json = 'null';
      }
    }
    if (json.length + (output === null ? 0 : output.length) > maxOutputBytes) {
      return errorResult('OUTPUT_TOO_LARGE', 'The result is over ' + maxOutputBytes + ' bytes', state);
    }
    return ['O', json, output, state.logs, state.truncated];
  }

  let pending = null;

  function run(runId, source, caller, circle, dbPath) {
    const state = { logs: [], bytes: 0, truncated: false };
    function call(op, a, b) {
      const reply = hostCall(op, runId, a, b);
      if (reply[0] === '0') return apply(stringSlice, reply, [1]);
      const cut = apply(stringIndexOf, reply, ['\u0000']);
      throw hostError(apply(stringSlice, reply, [1, cut]), apply(stringSlice, reply, [cut + 1]));
    }
    function checkName(name, fn) {
      if (typeof name !== 'string') throw hostError('INVALID_NAME', fn + ': document name must be a string');
    }
    const print = (...args) => {
      const line = toLine(args);
      if (state.truncated) return;
      if (state.bytes + line.length > maxLogBytes) {
        state.truncated = true;
        return;
      }
      state.bytes += line.length;
      apply(arrayPush, state.logs, [line]);
    };
    const load_data = (name) => {
      checkName(name, 'load_data');
      const text = call('load', name);
      return text === '' ? null : parse(text);
    };
    const save_data = (name, value) => {
      checkName(name, 'save_data');
      let text;
      try {
        text = stringify(value);
      } catch (error) {
        throw hostError('INVALID_DOCUMENT', 'save_data: value is not JSON-serialisable: ' + describe(error));
      }
      if (text === undefined) throw hostError('INVALID_DOCUMENT', 'save_data: value is not JSON-serialisable');
      call('save', name, text);
    };
    const list_data = (prefix) => {
      if (prefix === undefined) prefix = '';
      if (typeof prefix !== 'string') throw hostError('INVALID_NAME', 'list_data: prefix must be a string');
      return parse(call('list', prefix));
    };
    const delete_data = (name) => {
      checkName(name, 'delete_data');
      return call('delete', name) === 'true';
    };
    let value;
    try {
      value = evaluate(caller, circle, dbPath, print, load_data, save_data, list_data, delete_data, source);
    } catch (error) {
      return failure(error, state);
    }
    if (value instanceof NativePromise) {
      const record = { runId, state, status: 'pending', value: undefined };
      pending = record;
      try {
        apply(promiseThen, value, [
          (v) => { record.status = 'fulfilled'; record.value = v; },
          (e) => { record.status = 'rejected'; record.value = e; },
        ]);
      } catch (error) {
        pending = null;
        return failure(error, state);
      }
      return ['P'];
    }
    return success(value, state);
  }

  // Called right after run() returned ['P']: the microtask queue has drained by then, so the
  // promise is settled now or never (there are no timers or I/O to wait for).
  function settle(runId) {
    const record = pending;
    pending = null;
    if (record === null || record.runId !== runId) return errorResult('SCRIPT_ERROR', 'internal: no pending promise', { logs: [], truncated: false });
    if (record.status === 'fulfilled') return success(record.value, record.state);
    if (record.status === 'rejected') return failure(record.value, record.state);
    return errorResult(
      'SCRIPT_ERROR',
      'The script returned a promise that never settled (the sandbox has no timers or I/O to wait for)',
      record.state,
    );
  }

  return { run, settle };
})`
