/** At most `size` tasks at a time; the others wait in arrival order. */
export class Slots {
  readonly #size: number;
  #busy = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(size: number) {
    this.#size = size;
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#busy >= this.#size) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    else this.#busy += 1;
    try {
      return await task();
    } finally {
      // The slot passes straight to the next waiter, so a newcomer cannot overtake it.
      const next = this.#waiting.shift();
      if (next) next();
      else this.#busy -= 1;
    }
  }
}

/** Runs `task` over `items`, at most `size` at a time; resolves when all are done (rejects on the first error). */
export async function forEachLimited<T>(items: readonly T[], size: number, task: (item: T) => Promise<void>): Promise<void> {
  const slots = new Slots(size);
  await Promise.all(items.map((item) => slots.run(() => task(item))));
}
