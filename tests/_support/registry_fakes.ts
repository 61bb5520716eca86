/** An in-memory MembershipView for registry tests: a map of members plus an EventTarget. */
import type {
  ClusterEvent,
  ClusterEventType,
  Member,
  MembershipView,
  MemberState,
  Tags,
} from "../../src/membership/types.ts";

export class FakeMembership implements MembershipView {
  readonly target = new EventTarget();
  readonly localId: string;
  readonly table = new Map<string, Member>();
  #clock = 1_000;

  constructor(localId = "local") {
    this.localId = localId;
  }

  addEventListener(type: ClusterEventType, listener: (e: CustomEvent<ClusterEvent>) => void): void {
    this.target.addEventListener(type, listener as EventListener);
  }

  removeEventListener(
    type: ClusterEventType,
    listener: (e: CustomEvent<ClusterEvent>) => void,
  ): void {
    this.target.removeEventListener(type, listener as EventListener);
  }

  dispatchEvent(event: CustomEvent<ClusterEvent>): void {
    this.target.dispatchEvent(event);
  }

  members(): Member[] {
    return [...this.table.values()];
  }

  get(id: string): Member | undefined {
    return this.table.get(id);
  }

  subscribe(): AsyncIterableIterator<ClusterEvent> {
    const queue: ClusterEvent[] = [];
    let wake: (() => void) | undefined;
    const types = [
      "NodeJoined",
      "NodeLeft",
      "NodeFailed",
      "NodeSuspect",
      "NodeRecovered",
      "NodeUpdated",
    ];
    const listener = (e: Event) => {
      queue.push((e as CustomEvent<ClusterEvent>).detail);
      wake?.();
    };
    for (const t of types) this.target.addEventListener(t, listener);
    const done = () => {
      for (const t of types) this.target.removeEventListener(t, listener);
      wake?.();
    };
    let finished = false;
    const it: AsyncIterableIterator<ClusterEvent> = {
      async next() {
        while (!finished && queue.length === 0) await new Promise<void>((r) => (wake = r));
        if (finished) return { done: true, value: undefined };
        return { done: false, value: queue.shift()! };
      },
      return() {
        finished = true;
        done();
        return Promise.resolve({ done: true, value: undefined });
      },
      [Symbol.asyncIterator]() {
        return it;
      },
    };
    return it;
  }

  /** Adds or updates a member and dispatches the matching event. */
  set(
    id: string,
    state: MemberState,
    tags: Tags = {},
    rpcAddr = `127.0.0.1:${1000 + this.table.size}`,
  ): Member {
    const prev = this.table.get(id);
    const m: Member = {
      id,
      gossipAddr: "127.0.0.1:1",
      rpcAddr: prev?.rpcAddr ?? rpcAddr,
      incarnation: (prev?.incarnation ?? 0) + 1,
      state,
      tags,
      phi: state === "suspect" ? 9 : 0.5,
      stateChangedAt: this.#clock++,
    };
    this.table.set(id, m);
    let event: ClusterEvent;
    if (!prev || prev.state === "dead" || prev.state === "left") {
      event = { type: "NodeJoined", node: m };
    } else if (state === "dead") event = { type: "NodeFailed", node: m };
    else if (state === "left") event = { type: "NodeLeft", node: m };
    else if (state === "suspect") event = { type: "NodeSuspect", node: m, phi: 9 };
    else if (prev.state === "suspect") event = { type: "NodeRecovered", node: m };
    else event = { type: "NodeUpdated", node: m, previousTags: prev.tags };
    this.target.dispatchEvent(new CustomEvent(event.type, { detail: event }));
    return m;
  }
}
