// Counters in this process's memory: for one replica, or when no Redis is configured. Same windows and keys as
// the Redis store; each counter is dropped once its window is over.
import { systemClock, windowKey, type Clock, type CounterStore, type WindowCount } from './counter-store.js';
import { fixedWindow } from './time-unit.js';

interface Counter {
  count: number;
  /** Unix seconds at which the window ends. */
  endsAt: number;
}

export class MemoryCounterStore implements CounterStore {
  readonly description = 'memory';
  private readonly counters = new Map<string, Counter>();
  private nextSweep = 0;

  constructor(private readonly now: Clock = systemClock) {}

  hit(key: string, windowSeconds: number, hits: number): Promise<WindowCount> {
    const now = this.now();
    this.sweep(now);
    const window = fixedWindow(now, windowSeconds);
    const name = windowKey(key, window.start);
    let counter = this.counters.get(name);
    if (counter === undefined) this.counters.set(name, (counter = { count: 0, endsAt: window.start + windowSeconds }));
    counter.count += hits;
    return Promise.resolve({ count: counter.count, resetSeconds: window.resetSeconds });
  }

  close(): Promise<void> {
    this.counters.clear();
    return Promise.resolve();
  }

  /** At most once a second: drops counters whose window is over, so that keys from many callers do not pile up. */
  private sweep(now: number): void {
    if (now < this.nextSweep) return;
    this.nextSweep = now + 1;
    for (const [name, counter] of this.counters) if (counter.endsAt <= now) this.counters.delete(name);
  }
}
