/**
 * The `rpcnet` command driven as a person would: three agents on loopback (two with the example
 * handlers module), then members, call, monitor through one node's address; kill -9 of one.
 */
import assert from "node:assert/strict";
import {
  Agent,
  agentArgs,
  HANDLERS,
  LineProcess,
  makeCa,
  REPO,
  rpcnet,
} from "./_support/cli_helpers.ts";

interface MemberJson {
  id: string;
  state: string;
  tags: Record<string, string>;
  rpcAddr: string;
  gossipAddr: string;
  incarnation: number;
  phi: number;
  sinceChangeMs: number;
}

Deno.test("rpcnet: agents, members, call, monitor and a kill -9, through the command", async (t) => {
  const { dir, ca } = await makeCa();
  const agents: Agent[] = [];
  try {
    const seed = await Agent.start(agentArgs("seed", ca, ["--tag", "role=seed"]));
    agents.push(seed);
    const env = { RPCNET_SEEDS: seed.started.gossipAddr, RPCNET_TAGS: "role=worker" };
    const [w1, w2] = await Promise.all([
      Agent.start(agentArgs("w1", ca, ["--handlers", HANDLERS]), env),
      Agent.start(agentArgs("w2", ca, ["--handlers", HANDLERS]), env),
    ]);
    agents.push(w1, w2);
    assert.deepEqual(w1.started.tags, { role: "worker" }); // from RPCNET_TAGS
    assert.deepEqual(w1.started.handlers, ["compute", "count", "echo.v1", "slow", "sum"]);
    await seed.waitFor(() => seed.events("joined").length === 2, "seed to log both joins");
    const look = { RPCNET_ADDR: seed.started.rpcAddr, RPCNET_CA: ca };

    await t.step("members --json lists all three alive", async () => {
      const r = await rpcnet(["members", "--json"], look);
      assert.equal(r.code, 0, r.stderr);
      const members = JSON.parse(r.stdout) as MemberJson[];
      assert.deepEqual(members.map((m) => [m.id, m.state]), [
        ["seed", "alive"],
        ["w1", "alive"],
        ["w2", "alive"],
      ]);
      const m1 = members.find((m) => m.id === "w1")!;
      assert.equal(m1.rpcAddr, w1.started.rpcAddr);
      assert.equal(m1.gossipAddr, w1.started.gossipAddr);
      assert.deepEqual(m1.tags, { role: "worker" });
    });

    await t.step("members prints a table; --filter selects by tag; the task runs it", async () => {
      const r = await rpcnet(["members", "--filter", "role=worker"], look);
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.trim().split("\n");
      assert.match(lines[0], /^Node\s+Gossip\s+RPC\s+Status\s+Inc\s+Phi\s+Since\s+Tags$/);
      assert.equal(lines.length, 3);
      assert.match(lines[1], /^w1\s+127\.0\.0\.1:\d+\s+127\.0\.0\.1:\d+\s+alive\s+.*role=worker$/);
      assert.ok(!r.stdout.includes("\x1b[")); // NO_COLOR and not a terminal
      const task = await new Deno.Command("deno", {
        args: ["task", "-q", "rpcnet", "--", "members", "--json", "--addr", seed.started.rpcAddr],
        cwd: REPO,
        env: { RPCNET_CA: ca, NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(task.code, 0, new TextDecoder().decode(task.stderr));
      assert.equal(JSON.parse(new TextDecoder().decode(task.stdout)).length, 3);
    });

    await t.step(
      "call: a balanced worker, a given node, a stream, and an unknown method",
      async () => {
        const r = await rpcnet(["call", "compute", '{"n": 7}', "--filter", "role=worker"], look);
        assert.equal(r.code, 0, r.stderr);
        const answer = JSON.parse(r.stdout);
        assert.equal(answer.square, 49);
        assert.ok(["w1", "w2"].includes(answer.node), answer.node);

        const direct = await rpcnet(["call", "echo.v1", '{"hello":"world"}'], {
          ...look,
          RPCNET_ADDR: w2.started.rpcAddr,
        });
        assert.equal(direct.code, 0, direct.stderr);
        assert.deepEqual(JSON.parse(direct.stdout), { hello: "world" });

        const stream = await rpcnet(
          ["call", "count", '{"to": 3}', "--stream", "--addr", w1.started.rpcAddr],
          look,
        );
        assert.equal(stream.code, 0, stream.stderr);
        assert.deepEqual(stream.stdout.trim().split("\n"), ["1", "2", "3"]);

        const unknown = await rpcnet(["call", "nope", "--filter", "role=worker"], look);
        assert.equal(unknown.code, 1);
        assert.equal(unknown.stdout, "");
        assert.match(unknown.stderr, /not_found: no unary handler for method 'nope'/);

        const none = await rpcnet(["call", "compute", "--filter", "role=db"], look);
        assert.equal(none.code, 1);
        assert.match(none.stderr, /role=db/);

        const late = await rpcnet(
          ["call", "slow", '{"ms": 3000}', "--timeout", "200ms", "--addr", w1.started.rpcAddr],
          look,
        );
        assert.equal(late.code, 1);
        assert.match(late.stderr, /deadline_exceeded/);
      },
    );

    await t.step("looking does not add a member", async () => {
      const r = await rpcnet(["members", "--json"], look);
      assert.equal(JSON.parse(r.stdout).length, 3);
      // Members known when an agent started are counted in its started line, later ones logged.
      for (const a of agents) {
        const known = (a.started.members as number) - 1 + a.events("joined").length;
        assert.equal(known, 2, a.stdout.join("\n"));
      }
    });

    await t.step(
      "after kill -9 of w2, monitor prints its failure and members shows it failed",
      async () => {
        const monitor = new LineProcess(["monitor", "--json"], look);
        const textMonitor = new LineProcess(["monitor"], look);
        try {
          await monitor.waitFor(
            () => monitor.stderr.some((l) => l.startsWith("monitoring seed")),
            "monitor to subscribe",
          );
          await textMonitor.waitFor(
            () => textMonitor.stderr.some((l) => l.startsWith("monitoring seed")),
            "the text monitor to subscribe",
          );
          await w2.stop("SIGKILL");
          await monitor.waitFor(
            () =>
              monitor.stdout.some((l) => {
                const e = JSON.parse(l);
                return e.type === "failed" && e.member.id === "w2";
              }),
            "monitor to print w2's failure",
          );
          await textMonitor.waitFor(
            () => textMonitor.stdout.some((l) => / failed +w2 gossip=127\.0\.0\.1:\d+/.test(l)),
            "the text monitor to print w2's failure",
          );
          const r = await rpcnet(["members"], look);
          assert.match(r.stdout, /\nw2\s+\S+\s+\S+\s+failed\s/);
          const json = JSON.parse(
            (await rpcnet(["members", "--json"], look)).stdout,
          ) as MemberJson[];
          assert.equal(json.find((m) => m.id === "w2")!.state, "dead");
        } finally {
          assert.equal((await monitor.stop("SIGINT")).code, 0, monitor.stderr.join("\n"));
          await textMonitor.stop("SIGINT");
        }
      },
    );

    await t.step("SIGTERM makes an agent leave gracefully", async () => {
      const status = await w1.stop("SIGTERM");
      assert.equal(status.code, 0);
      assert.deepEqual(w1.log.slice(-2).map((l) => l.event), ["leaving", "stopped"]);
      await seed.waitFor(() => seed.events("left", "w1").length === 1, "seed to log w1 left");
    });
  } finally {
    await Promise.all(agents.map((a) => a.stop("SIGKILL")));
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("rpcnet: with a cluster secret, members without it is refused", async () => {
  const { dir, ca } = await makeCa();
  const agent = await Agent.start(agentArgs("locked", ca), { RPCNET_SECRET: "s3cret-value" });
  try {
    const look = { RPCNET_ADDR: agent.started.rpcAddr, RPCNET_CA: ca };
    const refused = await rpcnet(["members", "--json"], look);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /unauthenticated/);
    assert.equal(refused.stdout, "");
    const wrong = await rpcnet(["members", "--secret", "not-it"], look);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /unauthenticated/);
    const ok = await rpcnet(["members", "--json"], { ...look, RPCNET_SECRET: "s3cret-value" });
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual(JSON.parse(ok.stdout).map((m: MemberJson) => m.id), ["locked"]);
  } finally {
    await agent.stop("SIGKILL");
    await Deno.remove(dir, { recursive: true });
  }
});
