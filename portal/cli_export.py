"""`portal export-worker`: run FHIR bulk exports outside the web process."""

from __future__ import annotations

import asyncio
import signal

import click

from portal.cli_support import open_runtime
from portal.fhir.bulk.worker import ExportLoop, run_due


@click.command("export-worker")
@click.option("--once", is_flag=True, help="Run the pending exports now, then exit.")
@click.option("--interval", default=5.0, show_default=True, help="Seconds between passes.")
def export_worker(once: bool, interval: float) -> None:
    """Run FHIR bulk exports from a separate process (set PORTAL_EXPORT_IN_PROCESS=false on
    serve). It must see the same PORTAL_EXPORT_DIR as the web process, which serves the files."""
    rt = open_runtime()
    if once:
        ran = asyncio.run(run_due(rt))
        click.echo(f"Ran {ran} export(s).")
        return
    worker = ExportLoop(rt, interval=interval)

    async def main() -> None:
        # SIGINT / SIGTERM: the running export stops after its batch and goes back to the queue.
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, worker.stop)
        await worker.run()

    asyncio.run(main())
