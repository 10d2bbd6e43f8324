"""The ``closeloop`` command line.

``closeloop run`` materializes the daily job; ``closeloop sandbox serve|advance|truth|generate``
run the embedded sandbox brand.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from datetime import timedelta
from pathlib import Path

SANDBOX_SCALES = ("small", "demo", "large")


class OneLineParser(argparse.ArgumentParser):
    """Bad arguments get one line naming them, not a usage dump."""

    def error(self, message: str):  # noqa: D102 - argparse hook
        self.exit(2, f"{self.prog}: error: {message}\n")


def _load_dotenv() -> None:
    try:
        from dotenv import load_dotenv
    except ImportError:  # the dependency is declared; a broken install still gets a clear message elsewhere
        return
    load_dotenv(Path.cwd() / ".env", override=False)


def _pointer_path() -> Path:
    from connectors.sandbox.world import data_dir

    return data_dir() / "sandbox" / "current.json"


def _resolve_world(args):
    """The world named on the command line, else the one ``serve`` last started."""
    from connectors.sandbox.world import World, world_dir

    if args.scale is not None or args.seed is not None:
        path = world_dir(args.scale or "demo", args.seed if args.seed is not None else 7)
    else:
        pointer = _pointer_path()
        if not pointer.exists():
            raise SystemExit("closeloop: error: no sandbox has been served yet; run 'closeloop sandbox serve' or pass --scale and --seed")
        path = Path(json.loads(pointer.read_text())["path"])
    try:
        return World(path)
    except FileNotFoundError as exc:
        raise SystemExit(f"closeloop: error: {exc}") from None


def cmd_sandbox_generate(args) -> int:
    from connectors.sandbox.generator import generate_world

    path = generate_world(args.scale, args.seed, force=args.force)
    meta = json.loads((path / "meta.json").read_text())
    print(f"world {args.scale} seed {args.seed}: {path} ({meta['counts']['orders']:,} orders)")
    return 0


def cmd_sandbox_serve(args) -> int:
    import uvicorn

    from connectors.sandbox.emulators.faults import FaultConfig
    from connectors.sandbox.emulators.throttle import ThrottleSettings
    from connectors.sandbox.generator import generate_world
    from connectors.sandbox.server import build_app, connector_settings, write_env_file
    from connectors.sandbox.world import World

    faults = None
    if args.faults:
        try:
            faults = FaultConfig.load(Path(args.faults))
        except (OSError, ValueError) as exc:
            raise SystemExit(f"closeloop sandbox serve: error: --faults {args.faults}: {exc}") from None
    if args.throttle_scale <= 0:
        raise SystemExit("closeloop sandbox serve: error: argument --throttle-scale: must be positive")
    print(f"closeloop sandbox: preparing the '{args.scale}' world (seed {args.seed})...", flush=True)
    path = generate_world(args.scale, args.seed)
    world = World(path)
    if not world.clock_file.exists():
        world.set_clock(world.meta.clock_start)
    base = f"http://127.0.0.1:{args.port}"
    from connectors.sandbox.credentials import SandboxCredentials

    # connectors pace themselves to the sandbox's compressed limits; with throttling off, barely at all
    pace = 1000.0 if args.no_throttle else args.throttle_scale
    settings = connector_settings(base, SandboxCredentials(args.seed), args.accounting, pace)
    if args.env_file:
        write_env_file(Path(args.env_file), settings)
    pointer = _pointer_path()
    pointer.parent.mkdir(parents=True, exist_ok=True)
    pointer.write_text(json.dumps({"scale": args.scale, "seed": args.seed, "path": str(path.resolve()), "url": base}))
    app = build_app(world, base, ThrottleSettings(enabled=not args.no_throttle, scale=args.throttle_scale), faults)
    print(f"  world:    {path} ({world.meta.counts['orders']:,} orders)")
    print(f"  clock:    {world.now().isoformat()} (move it with 'closeloop sandbox advance --days N')")
    for name in ("shopify", "shipbob", "easypost", "xero", "netsuite", "amazon"):
        print(f"  {name:<9} {base}/{name}")
    print(f"  status:   {base}/_sandbox/status")
    if args.env_file:
        print(f"  settings: {args.env_file} (connector URLs and sandbox credentials)")
    print("Serving on 127.0.0.1; stop with Ctrl-C.", flush=True)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")
    return 0


def cmd_sandbox_advance(args) -> int:
    if args.days <= 0:
        raise SystemExit("closeloop sandbox advance: error: argument --days: must be a positive number of days")
    world = _resolve_world(args)
    before = world.now()
    after = world.set_clock(before + timedelta(days=args.days))
    print(f"sandbox clock: {before.isoformat()} -> {after.isoformat()}")
    if after < before + timedelta(days=args.days):
        print(f"note: the world ends at {world.meta.end.isoformat()}; the clock stopped there", file=sys.stderr)
    return 0


def cmd_sandbox_truth(args) -> int:
    import polars as pl

    world = _resolve_world(args)
    now = world.now()
    truth = world.table("truth")
    if not args.all:
        truth = truth.filter(pl.col("detectable_at") <= now)
    columns = ["exception_type", "channel", "channel_order_id", "sku", "reference"]
    out = Path(args.out)
    with out.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in truth.select(columns).iter_rows():
            writer.writerow(["" if v is None else v for v in row])
    print(f"wrote {truth.height} injected discrepancies detectable by {now.isoformat()} to {out}")
    return 0


def cmd_run(args) -> int:
    from .daily_run import print_outcome, run_daily

    try:
        outcome = run_daily(args.select)
    except ValueError as exc:
        raise SystemExit(f"closeloop run: error: {exc}") from None
    print_outcome(outcome)
    return 0 if outcome.success else 1


def cmd_demo(args) -> int:
    from .demo import run_demo

    return run_demo(args.scale, args.seed, args.port, args.ui_port, ui=not args.no_ui)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="closeloop", description="closeloop: reconcile, plan and close the loop for a DTC brand.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    run = commands.add_parser("run", help="materialize the daily job once against the configured sources",
                              description="Materialize the daily job (what the schedule runs) once, in this process, "
                                          "against the sources configured in the environment; progress on stderr; "
                                          "exit status 1 if anything failed.")
    run.add_argument("--select", help="Dagster asset selection within the daily job, e.g. 'group:ingest_xero'")
    run.set_defaults(func=cmd_run)

    demo = commands.add_parser("demo", help="serve the sandbox, run the daily job once, then serve the Dagster UI",
                               description="Serve the sandbox brand, run the daily job once against it, then serve the "
                                           "Dagster UI; Ctrl-C stops everything.")
    demo.add_argument("--scale", choices=SANDBOX_SCALES, default="demo", help="world size (default demo)")
    demo.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    demo.add_argument("--port", type=int, default=8700, help="sandbox port (default 8700)")
    demo.add_argument("--ui-port", type=int, default=3000, help="Dagster UI port (default 3000)")
    demo.add_argument("--no-ui", action="store_true", help="stop after the daily run (for CI)")
    demo.set_defaults(func=cmd_demo)

    sandbox = commands.add_parser("sandbox", help="the embedded synthetic brand and its API emulators",
                                  description="Generate, serve and steer the synthetic brand.")
    actions = sandbox.add_subparsers(dest="action", required=True, parser_class=OneLineParser)

    serve = actions.add_parser("serve", help="generate the brand (cached) and serve every emulator on 127.0.0.1",
                               description="Generate the synthetic brand (cached by scale and seed), serve every emulator "
                                           "on 127.0.0.1 and write the connector settings to the env file.")
    serve.add_argument("--scale", choices=SANDBOX_SCALES, default="demo", help="world size (default demo)")
    serve.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    serve.add_argument("--port", type=int, default=8700, help="port on 127.0.0.1 (default 8700)")
    serve.add_argument("--env-file", help="write KEY=VALUE connector settings here")
    serve.add_argument("--accounting", choices=("xero", "netsuite"), default="xero", help="ACCOUNTING_SYSTEM written to the env file")
    serve.add_argument("--faults", help="fault injection file (YAML or JSON, see connectors/sandbox/emulators/faults.py)")
    serve.add_argument("--throttle-scale", type=float, default=1.0, help="run every rate limit this many times faster")
    serve.add_argument("--no-throttle", action="store_true", help="switch rate limiting off (throughput benchmarks)")
    serve.set_defaults(func=cmd_sandbox_serve)

    generate = actions.add_parser("generate", help="generate a world without serving it",
                                  description="Generate the synthetic brand of a scale and seed into the data directory.")
    generate.add_argument("--scale", choices=SANDBOX_SCALES, default="demo")
    generate.add_argument("--seed", type=int, default=7)
    generate.add_argument("--force", action="store_true", help="regenerate even if cached")
    generate.set_defaults(func=cmd_sandbox_generate)

    for name, func, text in (("advance", cmd_sandbox_advance, "move the sandbox clock forward; the next days' records appear"),
                             ("truth", cmd_sandbox_truth, "write the injected discrepancies detectable now as CSV")):
        sub = actions.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        sub.add_argument("--scale", choices=SANDBOX_SCALES, help="world to use (default: the one last served)")
        sub.add_argument("--seed", type=int, help="seed of that world")
        sub.set_defaults(func=func)
        if name == "advance":
            sub.add_argument("--days", type=float, required=True, help="days to move forward")
        else:
            sub.add_argument("--out", required=True, help="CSV file to write")
            sub.add_argument("--all", action="store_true", help="include injections not yet detectable at the clock")
    return parser


def main(argv: list[str] | None = None) -> int:
    _load_dotenv()
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
