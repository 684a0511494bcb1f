"""``deepsalt view``: look at a map in the browser, served from this machine."""

from __future__ import annotations

from typing import Annotated

import typer

from deepsalt.cli.common import app, console, error_boundary

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def view_command(store_url: str, host: str = "127.0.0.1", port: int = 8765) -> str:
    """The ``deepsalt view`` command line that shows the map at ``store_url``."""
    options = "" if (host, port) == ("127.0.0.1", 8765) else f" --host {host} --port {port}"
    return f"deepsalt view {store_url}{options}"


@app.command()
@error_boundary
def view(
    store: Annotated[str, typer.Argument(help="The map's Zarr store (local path or s3://...).")],
    host: Annotated[
        str, typer.Option(help="Address to listen on; anything but 127.0.0.1 shares the map with others.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).")] = 8765,
    open_browser: Annotated[
        bool, typer.Option("--open/--no-open", help="Open the page in the default browser.")
    ] = False,
) -> None:
    """Show a map on an interactive web page: pan and zoom through its pyramid, read pixels."""
    import webbrowser

    from deepsalt.viewer.page import page_settings
    from deepsalt.viewer.server import STORE_PREFIX, StoreFiles, ViewerServer

    files = StoreFiles(store)
    settings = page_settings(files.url, STORE_PREFIX.strip("/") + "/").to_json()
    server = ViewerServer(files, lambda: settings, host, port)
    if host not in LOOPBACK:
        console.print(f"[bold yellow]note[/] listening on {host}: anyone who can reach it can read the map")
    console.print(f"DeepSalt viewer for {files.url} at [bold]{server.url}[/] (Ctrl-C stops it)")
    if open_browser:
        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.httpd.server_close()
