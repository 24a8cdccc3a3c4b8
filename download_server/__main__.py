"""`python -m download_server` serves until SIGINT/SIGTERM; `python -m download_server migrate` migrates and exits."""

from __future__ import annotations

import sys

from download_server.bootstrap import start_download_server
from download_server.config import DownloadSettings, database_url_from_env
from download_server.migrations import SCRIPT_LOCATION
from mediadl_common.entrypoint import ServerProgram, run_server_program

PROGRAM = ServerProgram(
    prog="download_server",
    description=__doc__ or "",
    load_settings=DownloadSettings.from_env,
    database_url_from_env=database_url_from_env,
    migrations=SCRIPT_LOCATION,
    start=start_download_server,
)


def main(argv: list[str] | None = None) -> int:
    return run_server_program(PROGRAM, argv)


if __name__ == "__main__":
    sys.exit(main())
