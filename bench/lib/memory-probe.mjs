// Preloaded into the server by bench/footprint.mjs (`node --import`): answers
// { type: 'myapi-bench-memory', id, gc } on the IPC channel with process.memoryUsage() and,
// when asked and the process runs with --expose-gc, the heap still used after a full GC (the
// live heap: what a leak makes grow). Inert when there is no IPC channel.
if (typeof process.send === 'function') {
  process.on('message', (message) => {
    if (message === null || typeof message !== 'object') return;
    if (message.type !== 'myapi-bench-memory') return;
    const memory = process.memoryUsage();
    let liveHeapUsed = null;
    if (message.gc === true && typeof globalThis.gc === 'function') {
      globalThis.gc();
      liveHeapUsed = process.memoryUsage().heapUsed;
    }
    process.send({ type: 'myapi-bench-memory', id: message.id, memory, liveHeapUsed });
  });
}
