/**
 * The package's `require` entry (package.json exports → "require"). CommonJS callers get the very
 * module an `import` gets, through Node's require() of ES modules (Node ^20.19, >= 22.12): one
 * instance, so `instanceof` and module state agree whichever way it was loaded. Where Node cannot
 * do that (an older release, or --no-experimental-require-module), Node's bare ERR_REQUIRE_ESM
 * becomes an error that says what to do.
 */
try {
  module.exports = require('./index.js');
} catch (err) {
  const code = (err as { code?: unknown } | null)?.code;
  if (code !== 'ERR_REQUIRE_ESM' && code !== 'ERR_REQUIRE_ASYNC_MODULE') throw err;
  throw Object.assign(
    new Error(
      `pushtask is an ES module and this Node.js (${process.version}) cannot require() it (${String(code)}). ` +
        'Use Node.js ^20.19 or >= 22.12 without --no-experimental-require-module, ' +
        "or load it with `const { TaskMaster } = await import('pushtask')`.",
      { cause: err },
    ),
    { code },
  );
}
