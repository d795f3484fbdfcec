/**
 * What one evaluator run may hold of stored events at once, counted in characters of their JSON (memory follows it
 * closely: see entity-rows' eventCharsReadableAtOnce). A page's users' events are read before its evaluations start
 * and kept until each is evaluated, and evaluations read at once (a rebuild reads every event a user has): bounding
 * each read alone would let a few large ones together run the process out of memory.
 *
 * Each entity's reads take from the run's budget through a lease of their own, which the run gives back once the
 * entity's evaluation is done with them.
 */
export class EventsBudget {
  #held = 0;

  constructor(
    /** The most characters the run holds at once, and so the most one entity's reads may hold. */
    readonly limit: number,
  ) {}

  /** Characters the run's leases hold now. */
  get held(): number {
    return this.#held;
  }

  /** A lease for one entity's reads, holding nothing yet. */
  lease(): EventsLease {
    return new EventsLease(this.limit, (chars) => (this.#held += chars));
  }
}

/**
 * What a read finds when it takes more: `fits`; `too many` when the entity's reads alone pass the budget (its
 * evaluation cannot be held in memory: TooManyEventsError); `held by others` when they fit alone but other entities'
 * reads hold the rest of the budget (it is evaluated again alone: RunHoldsTooManyEventsError).
 */
export type EventsTaken = 'fits' | 'too many' | 'held by others';

export class EventsLease {
  #chars = 0;
  #events = 0;

  constructor(
    readonly limit: number,
    /** Adds to what the run holds (negative to give back) and returns its new total. */
    private readonly hold: (chars: number) => number,
  ) {}

  /** Characters and events the lease holds. */
  get chars(): number {
    return this.#chars;
  }

  get events(): number {
    return this.#events;
  }

  /** Counts what a read decoded; it is held whatever the answer, until given back. */
  take(chars: number, events: number): EventsTaken {
    this.#chars += chars;
    this.#events += events;
    const runHolds = this.hold(chars);
    if (this.#chars > this.limit) return 'too many';
    return runHolds > this.limit ? 'held by others' : 'fits';
  }

  /** Hands what the lease holds to another (events an evaluation takes from prepare's read), the run's total unchanged. */
  moveTo(other: EventsLease): void {
    const [chars, events] = [this.#chars, this.#events];
    this.giveBack();
    other.take(chars, events);
  }

  /** Gives back what a read took (a read that failed, events dropped unused), or all the lease holds. */
  giveBack(chars = this.#chars, events = this.#events): void {
    const given = Math.min(chars, this.#chars);
    this.#chars -= given;
    this.#events -= Math.min(events, this.#events);
    this.hold(-given);
  }
}
